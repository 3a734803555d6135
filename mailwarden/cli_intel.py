"""``mailwarden intel``: the indicator store from the command line.

    mailwarden intel add domain evil.example --confidence 90 --action block [--remediate]
    mailwarden intel list [--type domain] [--tag partner:Globex] [--active] [--format jsonl|table]
    mailwarden intel revoke 42 --reason "false positive"
    mailwarden intel export --format stix|misp|edl|rpz|csv [--kind domain|url|ip] [--output PATH]
    mailwarden intel hunt 42 [--remediate]
    mailwarden intel pull [--source NAME] --config org.toml
    mailwarden intel publish --config org.toml              one round of webhooks and syslog
    mailwarden intel webhooks dead | replay [ID...] [--all-dead] [--webhook NAME --since-event N]

Changes are recorded as ``cli:$USER`` in the audit log. Exit status 0 when the command ran, 1 when it failed
(a refused indicator, a database or network error), 2 on usage errors.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from mailwarden.config import OrgConfig, Settings
from mailwarden.errors import ConfigError, MailwardenError
from mailwarden.store.db import begin_write

app = typer.Typer(help="Threat intel: indicators (add, list, revoke, export), hunts, pulls, webhooks.",
                  no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhook deliveries: the dead-letter list and replay.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")

ConfigOption = Annotated[Path | None, typer.Option("--config", help="Organisation config (org.toml).",
                                                   dir_okay=False)]


class Kind(StrEnum):
    DOMAIN = "domain"
    URL = "url"
    IPV4 = "ipv4"
    IPV6 = "ipv6"
    EMAIL = "email-addr"
    SHA256 = "file-sha256"


class ExportFormat(StrEnum):
    STIX = "stix"
    MISP = "misp"
    EDL = "edl"
    RPZ = "rpz"
    CSV = "csv"


class EdlKind(StrEnum):
    DOMAIN = "domain"
    URL = "url"
    IP = "ip"


class ListFormat(StrEnum):
    JSONL = "jsonl"
    TABLE = "table"


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code=code)


def _settings(ctx: typer.Context) -> Settings:
    found = ctx.find_root().obj
    return found if isinstance(found, Settings) else Settings.from_env()


def _engine(ctx: typer.Context) -> Any:
    from mailwarden.gateway.server import open_engine

    try:
        return open_engine(_settings(ctx).database_url)
    except MailwardenError as exc:
        raise _fail(str(exc)) from exc


def _config(config: Path | None) -> tuple[OrgConfig, Any]:
    from mailwarden.config import load_org
    from mailwarden.intel.settings import load_intel_settings

    try:
        return (load_org(config) if config else OrgConfig()), load_intel_settings(config)
    except ConfigError as exc:
        raise _fail(str(exc), 2) from exc


def _context(config: Path | None) -> Any:
    from mailwarden.intel.web import IntelContext

    org, settings = _config(config)
    return IntelContext.build(settings, org)


def _actor() -> str:
    return f"cli:{os.environ.get('USER', 'unknown')}"


def _now() -> datetime:
    return datetime.now(UTC)


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _fail(f"{name}: expected an ISO 8601 time such as 2026-06-01T00:00:00Z", 2) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _hunt(ctx: typer.Context, engine: Any, indicator_id: int, remediate: bool, producer: str) -> dict[str, Any]:
    from mailwarden.gateway.spool import Spool
    from mailwarden.intel.hunt import retrohunt
    from mailwarden.store.blobs import BlobStore

    data_dir = _settings(ctx).data_dir
    found = retrohunt(engine, indicator_id, now=_now(), actor=_actor(), remediate=remediate,
                      blobs=BlobStore(data_dir / "archive"), spool=Spool(data_dir / "spool"), producer=producer)
    if found is None:
        raise _fail(f"no indicator {indicator_id}")
    return found.to_dict()


@app.command("add")
def add(ctx: typer.Context, kind: Annotated[Kind, typer.Argument(help="The indicator's type.")],
        value: Annotated[str, typer.Argument(help="The value (normalised when stored).")],
        confidence: Annotated[int, typer.Option("--confidence", min=0, max=100)] = 50,
        action: Annotated[str, typer.Option("--action", help="block or monitor")] = "monitor",
        severity: Annotated[str | None, typer.Option("--severity", help="low, medium, high or critical")] = None,
        valid_until: Annotated[str | None, typer.Option("--valid-until", help="ISO 8601 time")] = None,
        tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable)")] = None,
        description: Annotated[str, typer.Option("--description")] = "",
        hunt: Annotated[bool | None, typer.Option("--hunt/--no-hunt", help="Retro-hunt kept mail (default: for "
                                                  "blocks)")] = None,
        remediate: Annotated[bool, typer.Option("--remediate", help="Remove what the hunt finds")] = False,
        config: ConfigOption = None) -> None:
    """Create (or state again) an indicator; a block takes effect at the gateway within seconds."""
    from mailwarden.intel import store

    if action not in ("block", "monitor") or severity not in (None, "low", "medium", "high", "critical"):
        raise _fail("--action is block or monitor; --severity low, medium, high or critical", 2)
    context = _context(config)
    item = store.NewIndicator(kind.value, value, confidence=confidence, action=action, severity=severity,
                              source=_actor(), tags=tuple(tag or ()), description=description,
                              valid_until=_time(valid_until, "--valid-until"))
    engine = _engine(ctx)
    try:
        with begin_write(engine) as connection:
            change = store.record(connection, item, now=_now(), actor=_actor(), allow=context.allow,
                                  producer=context.producer)
        if change.indicator is None:
            raise _fail(change.refused)
        result: dict[str, Any] = {"indicator": change.indicator, "created": change.created}
        if hunt if hunt is not None else action == "block":
            result["retrohunt"] = _hunt(ctx, engine, change.indicator["id"], remediate, context.producer)
    finally:
        engine.dispose()
    typer.echo(json.dumps(result, ensure_ascii=False))


@app.command("list")
def list_indicators(ctx: typer.Context, kind: Annotated[Kind | None, typer.Option("--type")] = None,
                    value: Annotated[str | None, typer.Option("--value")] = None,
                    contains: Annotated[str | None, typer.Option("--contains")] = None,
                    source: Annotated[str | None, typer.Option("--source")] = None,
                    tag: Annotated[str | None, typer.Option("--tag")] = None,
                    active: Annotated[bool | None, typer.Option("--active/--inactive", help="In force, or revoked "
                                                                "and expired (default: both)")] = None,
                    limit: Annotated[int, typer.Option("--limit", min=1)] = 1000,
                    output_format: Annotated[ListFormat, typer.Option("--format")] = ListFormat.JSONL) -> None:
    """Indicators, newest first."""
    from mailwarden.intel import store

    filters = store.Filters(type=kind.value if kind else None, value=value, contains=contains, source=source,
                            tag=tag, active=active)
    engine = _engine(ctx)
    rows: list[dict[str, Any]] = []
    try:
        cursor = None
        while len(rows) < limit:
            found = store.search(engine, filters, cursor=cursor, limit=min(1000, limit - len(rows)))
            rows.extend(found.items)
            cursor = found.next_cursor
            if cursor is None:
                break
    finally:
        engine.dispose()
    if output_format is ListFormat.JSONL:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table()
    columns = ("id", "type", "value", "action", "current_confidence", "source", "valid_until", "active")
    for column in columns:
        table.add_column(column.replace("current_", ""), overflow="fold")
    for row in rows:
        shown = {**row, "valid_until": str(row.get("valid_until") or "")[:10]}
        table.add_row(*(escape(str(shown.get(c, ""))) for c in columns))
    Console().print(table)


@app.command("revoke")
def revoke(ctx: typer.Context, indicator_id: Annotated[int, typer.Argument(help="The indicator's id.")],
           reason: Annotated[str, typer.Option("--reason")] = "", config: ConfigOption = None) -> None:
    """Revoke an indicator (kept and published as revoked; no longer listed or blocking)."""
    from mailwarden.intel import store

    context = _context(config)
    engine = _engine(ctx)
    try:
        with begin_write(engine) as connection:
            done = store.revoke(connection, indicator_id, now=_now(), actor=_actor(), reason=reason,
                                producer=context.producer)
    finally:
        engine.dispose()
    if done is None:
        raise _fail(f"no indicator {indicator_id}")
    typer.echo(f"revoked {indicator_id}")


@app.command("hunt")
def hunt_command(ctx: typer.Context, indicator_id: Annotated[int, typer.Argument(help="The indicator's id.")],
                 remediate: Annotated[bool, typer.Option("--remediate", help="Remove what is found")] = False,
                 config: ConfigOption = None) -> None:
    """Retro-hunt kept mail for an indicator (JSON: matches, actions, what was covered)."""
    context = _context(config)
    engine = _engine(ctx)
    try:
        result = _hunt(ctx, engine, indicator_id, remediate, context.producer)
    finally:
        engine.dispose()
    typer.echo(json.dumps(result, ensure_ascii=False))


@app.command("export")
def export(ctx: typer.Context,
           output_format: Annotated[ExportFormat, typer.Option("--format", help="stix, misp, edl, rpz or csv")],
           kind: Annotated[EdlKind, typer.Option("--kind", help="For edl: domain, url or ip")] = EdlKind.DOMAIN,
           output: Annotated[Path | None, typer.Option("--output", help="A file (a directory for misp); default "
                                                       "standard output")] = None,
           min_confidence: Annotated[int | None, typer.Option("--min-confidence", min=0, max=100)] = None,
           config: ConfigOption = None) -> None:
    """Export the indicators in force (expiry, revocation and the allow-list honoured)."""
    from mailwarden.intel import feeds, stix

    context = _context(config)
    threshold = context.settings.min_confidence if min_confidence is None else min_confidence
    engine = _engine(ctx)
    try:
        rows = feeds.published(engine, now=_now(), allow=context.allow, min_confidence=threshold)
    except MailwardenError as exc:
        raise _fail(str(exc)) from exc
    finally:
        engine.dispose()
    if output_format is ExportFormat.MISP:
        if output is None:
            raise _fail("--format misp writes a directory: give --output DIR", 2)
        feed = feeds.misp_feed(rows, context.producer)
        output.mkdir(parents=True, exist_ok=True)
        (output / "manifest.json").write_text(json.dumps(feed.manifest, indent=1), encoding="utf-8")
        (output / "hashes.csv").write_text(feed.hashes, encoding="utf-8")
        for event_uuid, event in feed.events.items():
            (output / f"{event_uuid}.json").write_text(json.dumps(event, indent=1), encoding="utf-8")
        typer.echo(f"wrote {len(feed.events)} events to {output}", err=True)
        return
    if output_format is ExportFormat.STIX:
        creator = stix.identity_id(context.producer)
        text = json.dumps(stix.bundle([stix.identity_object(context.producer),
                                       *(stix.indicator_object(r, creator) for r in rows)]), indent=1) + "\n"
    elif output_format is ExportFormat.EDL:
        text = feeds.edl(rows, kind.value)
    elif output_format is ExportFormat.RPZ:
        serial = int(_now().timestamp())
        text = feeds.rpz(feeds.rpz_body(rows, context.settings.rpz_zone), context.settings.rpz_zone, serial)
    else:
        text = feeds.indicators_csv(rows)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@app.command("pull")
def pull_command(ctx: typer.Context, config: ConfigOption = None,
                 source: Annotated[str | None, typer.Option("--source", help="Only this [[intel.pull]] name")]
                 = None) -> None:
    """Pull the configured TAXII collections and MISP feeds once (one JSON line per source)."""
    from mailwarden.intel.pull import pull

    context = _context(config)
    sources = [s for s in context.settings.pull if source is None or s.name == source]
    if not sources:
        raise _fail("no [[intel.pull]] source" + (f" named {source!r}" if source else "") + " in --config", 2)
    engine = _engine(ctx)
    failed = False
    try:
        for item in sources:
            try:
                report = pull(engine, item, now=_now(), allow=context.allow)
                typer.echo(json.dumps(report.to_dict()))
            except MailwardenError as exc:
                failed = True
                typer.echo(json.dumps({"source": item.source, "error": str(exc)}))
    finally:
        engine.dispose()
    if failed:
        raise typer.Exit(code=1)


@app.command("publish")
def publish(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Send new events to the configured webhooks and syslog receivers once."""
    import asyncio

    from mailwarden.intel.service import IntelService
    from mailwarden.pipeline import Context

    org, settings = _config(config)
    engine = _engine(ctx)
    try:
        done = asyncio.run(IntelService(engine, org, settings, Context()).publish_once())
    finally:
        engine.dispose()
    typer.echo(json.dumps(done))


@webhooks_app.command("dead")
def webhooks_dead(ctx: typer.Context, sink: Annotated[str | None, typer.Option("--webhook", help="A webhook name")]
                  = None, limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 500) -> None:
    """The dead-letter list: deliveries that ran out of attempts (one JSON line each)."""
    from mailwarden.intel import outbox

    engine = _engine(ctx)
    try:
        found = outbox.list_deliveries(engine, state="dead", sink=f"webhook:{sink}" if sink else None, limit=limit)
    finally:
        engine.dispose()
    for item in found.items:
        typer.echo(json.dumps(item, ensure_ascii=False))


@webhooks_app.command("replay")
def webhooks_replay(ctx: typer.Context, ids: Annotated[list[int] | None, typer.Argument(help="Delivery ids")] = None,
                    all_dead: Annotated[bool, typer.Option("--all-dead", help="Every dead delivery")] = False,
                    webhook: Annotated[str | None, typer.Option("--webhook", help="With --since-event: which one")]
                    = None,
                    since_event: Annotated[int | None, typer.Option("--since-event", help="Queue every event after "
                                                                    "this id again")] = None,
                    config: ConfigOption = None) -> None:
    """Send deliveries again from the first attempt (the next publish round sends them)."""
    from mailwarden.intel import outbox, store

    if since_event is not None:
        _, settings = _config(config)
        chosen = [w for w in settings.webhooks if w.name == webhook]
        if not chosen:
            raise _fail("--since-event needs --webhook NAME of an [[intel.webhooks]] entry in --config", 2)
    elif not ids and not all_dead:
        raise _fail("give delivery ids, --all-dead, or --webhook NAME --since-event ID", 2)
    engine = _engine(ctx)
    try:
        if since_event is not None:
            count = outbox.replay_events(engine, chosen[0], since_event=since_event, now=_now())
            replayed: list[int] = []
        else:
            replayed = outbox.replay(engine, now=_now(), ids=ids if ids else None)
            count = len(replayed)
        with begin_write(engine) as connection:
            store.audit(connection, _now(), _actor(), "webhook_replay", None, deliveries=replayed,
                        since_event=since_event, webhook=webhook)
    finally:
        engine.dispose()
    typer.echo(f"{count} deliveries queued again")
