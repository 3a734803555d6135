"""The gateway's commands: ``serve``, ``queue``, ``quarantine``, ``logs``, ``apikey``.

    mailwarden serve [--config org.toml] [--smtp-listen H:P] [--http-listen H:P] [--relay H:P]
                     [--tls-cert PEM --tls-key PEM]
    mailwarden queue list [--state S] [--format jsonl|table] | retry [ID...] | drop ID
    mailwarden quarantine list [--state S] [--format jsonl|table] | show ID | release ID [--by WHO] | delete ID
    mailwarden logs rejections|releases|dmarc-alerts [--since T] [--until T] [--reason R | --dmarc R | --kind K]
                     [--limit N]
    mailwarden apikey create --scope SCOPE... [--name NAME] [--user EMAIL]     (the key alone on the last line)
    mailwarden messages search|show|delete|prune ...; mailwarden logs removals     (``cli_messages.py``)

Exit status 0 when the command ran, 1 when it failed (an unknown id, a database error), 2 on usage errors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from mailwarden.config import Settings
from mailwarden.errors import ConfigError, MailwardenError

queue_app = typer.Typer(help="The delivery queue: list, retry now, drop.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Quarantined messages: list, show, release, delete.", no_args_is_help=True)
logs_app = typer.Typer(help="The Rejection Log, the Release Log and DMARC alerts.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for the HTTP API.", no_args_is_help=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", help="Organisation config (org.toml).",
                                                   dir_okay=False)]


class ListFormat(StrEnum):
    JSONL = "jsonl"
    TABLE = "table"


def _usage(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code=2)


def _failed(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code=1)


def _settings(ctx: typer.Context) -> Settings:
    found = ctx.find_root().obj
    return found if isinstance(found, Settings) else Settings.from_env()


def _engine(ctx: typer.Context) -> Any:
    from mailwarden.gateway.server import open_engine

    try:
        return open_engine(_settings(ctx).database_url)
    except MailwardenError as exc:
        raise _failed(str(exc)) from exc


def _spool(ctx: typer.Context) -> Any:
    from mailwarden.gateway.spool import Spool

    return Spool(_settings(ctx).data_dir / "spool")


def _now() -> datetime:
    return datetime.now(UTC)


def _print_rows(rows: list[dict[str, Any]], columns: list[str], output_format: ListFormat) -> None:
    if output_format is ListFormat.JSONL:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table()
    for column in columns:
        table.add_column(column, overflow="fold")
    from mailwarden.gateway.quarantine import without_controls

    for row in rows:  # no control characters reach the terminal (a subject could carry escape sequences)
        table.add_row(*(escape(without_controls(str(row.get(c, "")), 100_000)) for c in columns))
    Console().print(table)


def _all_pages(fetch: Any, limit: int | None = None) -> Iterator[dict[str, Any]]:
    cursor = None
    seen = 0
    while True:
        page = fetch(cursor)
        for item in page.items:
            yield item
            seen += 1
            if limit is not None and seen >= limit:
                return
        cursor = page.next_cursor
        if cursor is None:
            return


# --- serve -----------------------------------------------------------------------------------------

def serve(
    ctx: typer.Context,
    config: ConfigOption = None,
    smtp_listen: Annotated[str | None, typer.Option("--smtp-listen", help="HOST:PORT for SMTP "
                                                    "[env MAILWARDEN_SMTP_LISTEN; default 127.0.0.1:2525]")] = None,
    http_listen: Annotated[str | None, typer.Option("--http-listen", help="HOST:PORT for the API "
                                                    "[env MAILWARDEN_HTTP_LISTEN; default 127.0.0.1:8025]")] = None,
    relay: Annotated[str | None, typer.Option("--relay", help="HOST:PORT of the next hop [env MAILWARDEN_RELAY]")]
    = None,
    tls_cert: Annotated[str | None, typer.Option("--tls-cert", help="PEM certificate for STARTTLS")] = None,
    tls_key: Annotated[str | None, typer.Option("--tls-key", help="PEM key for STARTTLS")] = None,
) -> None:
    """Run the gateway: SMTP listener, HTTP API and delivery workers, until SIGTERM."""
    import asyncio
    import logging

    from mailwarden.config import OrgConfig, load_org
    from mailwarden.gateway.server import Gateway, run
    from mailwarden.gateway.settings import load_gateway_settings
    from mailwarden.intel.settings import load_intel_settings

    settings = _settings(ctx)
    try:
        org = load_org(config) if config else OrgConfig()
        gateway_settings = load_gateway_settings(config, smtp_listen=smtp_listen, http_listen=http_listen,
                                                 relay=relay, tls_cert=tls_cert, tls_key=tls_key).validate()
        intel_settings = load_intel_settings(config)  # [intel]: webhooks, syslog, pulls, reloads
    except ConfigError as exc:
        raise _usage(str(exc)) from exc
    if not org.domains:
        raise _usage("the gateway needs the organisation's domains ([organization] domains in --config)")
    logging.basicConfig(level=os.environ.get("MAILWARDEN_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    gateway = Gateway(settings=gateway_settings, org=org, data_dir=settings.data_dir,
                      database_url=settings.database_url, intel=intel_settings)
    try:
        asyncio.run(run(gateway))
    except MailwardenError as exc:
        raise _failed(str(exc)) from exc
    except OSError as exc:
        raise _failed(f"cannot listen: {exc}") from exc


# --- queue -----------------------------------------------------------------------------------------

@queue_app.command("list")
def queue_list(ctx: typer.Context,
               state: Annotated[list[str] | None, typer.Option("--state", help="pending, delivering, delivered, "
                                                               "failed, dropped (repeatable)")] = None,
               output_format: Annotated[ListFormat, typer.Option("--format")] = ListFormat.TABLE,
               limit: Annotated[int, typer.Option("--limit", min=1)] = 1000) -> None:
    """Queue entries, newest first."""
    from mailwarden.gateway import queue

    engine = _engine(ctx)
    try:
        rows = list(_all_pages(lambda c: queue.list_entries(engine, states=state or (), cursor=c), limit))
    finally:
        engine.dispose()
    _print_rows(rows, ["id", "state", "kind", "mail_from", "recipients", "attempts", "next_attempt_at",
                       "last_error"], output_format)


@queue_app.command("retry")
def queue_retry(ctx: typer.Context, ids: Annotated[list[int] | None, typer.Argument(help="Entries to retry "
                                                                                    "(default: every pending one)")]
                = None) -> None:
    """Make entries due now (failed ones given by id are queued again)."""
    from mailwarden.gateway import queue

    engine = _engine(ctx)
    try:
        count = queue.retry_now(engine, ids or None, _now())
    finally:
        engine.dispose()
    typer.echo(f"{count} entries due now")


@queue_app.command("drop")
def queue_drop(ctx: typer.Context, entry_id: Annotated[int, typer.Argument(help="The queue entry.")]) -> None:
    """Remove an entry from the queue for good (no delivery, no bounce)."""
    from mailwarden.gateway import queue

    engine = _engine(ctx)
    try:
        dropped = queue.drop(engine, _spool(ctx), entry_id, _now())
    finally:
        engine.dispose()
    if not dropped:
        raise _failed(f"no pending queue entry {entry_id}")
    typer.echo(f"dropped {entry_id}")


# --- quarantine ------------------------------------------------------------------------------------

@quarantine_app.command("list")
def quarantine_list(ctx: typer.Context,
                    state: Annotated[str, typer.Option("--state", help="held, released or deleted")] = "held",
                    output_format: Annotated[ListFormat, typer.Option("--format")] = ListFormat.TABLE,
                    limit: Annotated[int, typer.Option("--limit", min=1)] = 1000) -> None:
    """Quarantined messages, newest first (jsonl: one object per message with message_id, verdict, signals)."""
    from mailwarden.gateway import quarantine

    if state not in ("held", "released", "deleted"):
        raise _usage("--state must be held, released or deleted")
    engine = _engine(ctx)
    try:
        rows = list(_all_pages(lambda c: quarantine.list_held(engine, state=state, cursor=c), limit))
    finally:
        engine.dispose()
    for row in rows:
        for key in ("subject", "header_from", "mail_from", "message_id"):
            row[key] = " ".join(str(row[key]).split())
    if output_format is ListFormat.TABLE:
        for row in rows:
            row["signals"] = ", ".join(s["id"] for s in row["signals"] if s.get("score"))
    _print_rows(rows, ["id", "received_at", "verdict", "score", "header_from", "subject", "signals"], output_format)


@quarantine_app.command("show")
def quarantine_show(ctx: typer.Context, quarantine_id: Annotated[int, typer.Argument(help="The entry.")]) -> None:
    """One quarantined message with a text-only preview (JSON)."""
    from mailwarden.gateway import quarantine

    engine = _engine(ctx)
    try:
        found = quarantine.preview(engine, _spool(ctx), quarantine_id)
    finally:
        engine.dispose()
    if found is None:
        raise _failed(f"no quarantined message {quarantine_id}")
    typer.echo(json.dumps(found, ensure_ascii=False, indent=2))


@quarantine_app.command("release")
def quarantine_release(ctx: typer.Context, quarantine_id: Annotated[int, typer.Argument(help="The entry.")],
                       by: Annotated[str | None, typer.Option("--by", help="Who releases (default: $USER)")] = None,
                       config: ConfigOption = None) -> None:
    """Queue the original message for delivery and write the Release Log."""
    from mailwarden.config import load_org
    from mailwarden.gateway import quarantine
    from mailwarden.gateway.settings import load_gateway_settings

    try:
        gateway_settings = load_gateway_settings(config)
        org = load_org(config) if config else None
    except ConfigError as exc:
        raise _usage(str(exc)) from exc
    who = by or f"cli:{os.environ.get('USER', 'unknown')}"
    engine = _engine(ctx)
    try:
        done = quarantine.release(engine, _spool(ctx), quarantine_id, who=who, destination=gateway_settings.relay,
                                  now=_now(), expire_after=gateway_settings.expire_after,
                                  authserv_id=(org.authserv_id if org else None) or gateway_settings.server_name,
                                  server_name=gateway_settings.server_name)
    except quarantine.QuarantineError as exc:
        raise _failed(str(exc)) from exc
    finally:
        engine.dispose()
    typer.echo(f"released {quarantine_id} (queue entry {done['queue_id']})")


@quarantine_app.command("delete")
def quarantine_delete(ctx: typer.Context, quarantine_id: Annotated[int, typer.Argument(help="The entry.")]) -> None:
    """Delete a held message for good."""
    from mailwarden.gateway import quarantine

    engine = _engine(ctx)
    try:
        quarantine.delete(engine, _spool(ctx), quarantine_id, now=_now())
    except quarantine.QuarantineError as exc:
        raise _failed(str(exc)) from exc
    finally:
        engine.dispose()
    typer.echo(f"deleted {quarantine_id}")


# --- logs ------------------------------------------------------------------------------------------

def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _usage(f"{name}: expected an ISO 8601 time such as 2026-03-02T10:00:00+00:00") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


Since = Annotated[str | None, typer.Option("--since", help="From this time (ISO 8601; UTC when no offset).")]
Until = Annotated[str | None, typer.Option("--until", help="Before this time.")]
Limit = Annotated[int, typer.Option("--limit", min=1, help="At most this many rows.")]
Format = Annotated[ListFormat, typer.Option("--format")]


@logs_app.command("rejections")
def logs_rejections(ctx: typer.Context, since: Since = None, until: Until = None,
                    reason: Annotated[str | None, typer.Option("--reason", help="dmarc, threat or protocol")] = None,
                    limit: Limit = 100, output_format: Format = ListFormat.JSONL) -> None:
    """Messages refused at SMTP time, newest first."""
    from mailwarden.gateway import logs

    start, end = _time(since, "--since"), _time(until, "--until")
    engine = _engine(ctx)
    try:
        rows = list(_all_pages(lambda c: logs.list_rejections(engine, since=start, until=end, reason=reason,
                                                              cursor=c), limit))
    finally:
        engine.dispose()
    _print_rows(rows, ["id", "time", "client_ip", "mail_from", "header_from", "reason", "dmarc", "detail"],
                output_format)


@logs_app.command("releases")
def logs_releases(ctx: typer.Context, since: Since = None, until: Until = None,
                  dmarc: Annotated[str | None, typer.Option("--dmarc", help="Only this DMARC result (e.g. fail)")]
                  = None, limit: Limit = 100, output_format: Format = ListFormat.JSONL) -> None:
    """Quarantined messages someone released, newest first."""
    from mailwarden.gateway import logs

    start, end = _time(since, "--since"), _time(until, "--until")
    engine = _engine(ctx)
    try:
        rows = list(_all_pages(lambda c: logs.list_releases(engine, since=start, until=end, dmarc=dmarc,
                                                            cursor=c), limit))
    finally:
        engine.dispose()
    _print_rows(rows, ["id", "time", "who", "header_from", "verdict", "spf", "dkim", "dmarc"], output_format)


@logs_app.command("dmarc-alerts")
def logs_dmarc_alerts(ctx: typer.Context, since: Since = None, until: Until = None,
                      kind: Annotated[str | None, typer.Option("--kind", help="unauthorised_source, "
                                                               "unauthorised_sources, failure_jump or spoof_evidence")]
                      = None,
                      domain: Annotated[str | None, typer.Option("--domain", help="Only this own domain")] = None,
                      limit: Limit = 100, output_format: Format = ListFormat.JSONL) -> None:
    """DMARC alerts from reports (new unauthorised senders, failure jumps, spoof evidence), newest first."""
    from mailwarden.dmarc.queries import ALERT_KINDS, alert_page

    if kind is not None and kind not in ALERT_KINDS:
        raise _usage(f"--kind must be one of {', '.join(ALERT_KINDS)}")
    start, end = _time(since, "--since"), _time(until, "--until")
    engine = _engine(ctx)
    try:
        rows = list(_all_pages(lambda c: alert_page(engine, domain=domain, kind=kind, since=start, until=end,
                                                    cursor=c), limit))
    finally:
        engine.dispose()
    _print_rows(rows, ["id", "time", "kind", "domain", "source_ip_address", "detail"], output_format)


# --- apikey ----------------------------------------------------------------------------------------

@apikey_app.command("create")
def apikey_create(ctx: typer.Context,
                  scope: Annotated[list[str], typer.Option("--scope", help="read:logs, quarantine:read, "
                                                           "quarantine:release, dmarc:read, dmarc:write or admin "
                                                           "(repeatable)")],
                  name: Annotated[str, typer.Option("--name", help="Who or what uses the key.")] = "api",
                  user: Annotated[str | None, typer.Option("--user", help="The user a quarantine:own key acts "
                                                           "for (their address).")] = None) -> None:
    """Create an API key; it is printed once, alone on the last line."""
    from mailwarden.api.keys import create_key

    scopes = sorted({s.strip() for item in scope for s in item.split(",") if s.strip()})
    engine = _engine(ctx)
    try:
        key = create_key(engine, name=name, scopes=scopes, now=_now(), user=user)
    except ConfigError as exc:
        raise _usage(str(exc)) from exc
    finally:
        engine.dispose()
    typer.echo(f"created API key {name!r} with scopes {', '.join(scopes)}; it is shown only once:")
    typer.echo(key)


def register(app: typer.Typer) -> None:
    """Add the gateway's commands to the main command line."""
    app.command("serve")(serve)
    app.add_typer(queue_app, name="queue")
    app.add_typer(quarantine_app, name="quarantine")
    app.add_typer(logs_app, name="logs")
    app.add_typer(apikey_app, name="apikey")
    from mailwarden.cli_messages import register as register_messages

    register_messages(app, logs_app)  # messages search|show|delete|prune, logs removals
