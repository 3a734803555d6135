"""``mailwarden messages``: the archive of accepted messages, searched, read, removed and pruned.

    mailwarden messages search [--sender A] [--recipient A] [--subject TEXT] [--domain D] [--url-host H]
                               [--attachment SHA256] [--since T] [--until T] [--limit N] [--format jsonl|table]
    mailwarden messages show ID [--raw]
    mailwarden messages delete [ID...] [criteria as for search] [--by WHO] [--dry-run]
    mailwarden messages prune [--config org.toml] [--days N] [--orphans]

Every removal (``delete``, ``prune``) is written to the removal log (``mailwarden logs removals``). Exit status
0 when the command ran, 1 when it failed (an unknown id), 2 on usage errors (no criteria for a removal by query).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from typing import Annotated, Any

import typer

from mailwarden.cli_gateway import (
    ConfigOption,
    ListFormat,
    _all_pages,
    _engine,
    _failed,
    _now,
    _print_rows,
    _settings,
    _spool,
    _time,
    _usage,
)
from mailwarden.errors import ConfigError

messages_app = typer.Typer(help="The archive of accepted messages: search, show, delete, prune.",
                           no_args_is_help=True)

Sender = Annotated[str | None, typer.Option("--sender", help="MAIL FROM or header From address.")]
Recipient = Annotated[str | None, typer.Option("--recipient", help="A recipient address.")]
Subject = Annotated[str | None, typer.Option("--subject", help="Text in the subject (case-insensitive).")]
Domain = Annotated[str | None, typer.Option("--domain", help="A sender, Reply-To or link domain.")]
UrlHost = Annotated[str | None, typer.Option("--url-host", help="The host of a link.")]
Attachment = Annotated[str | None, typer.Option("--attachment", help="An attachment's SHA-256.")]
Since = Annotated[str | None, typer.Option("--since", help="Received from this time (ISO 8601; UTC without offset).")]
Until = Annotated[str | None, typer.Option("--until", help="Received before this time.")]


def _blobs(ctx: typer.Context) -> Any:
    from mailwarden.store.blobs import BlobStore

    return BlobStore(_settings(ctx).data_dir / "archive")


def _criteria(sender: str | None, recipient: str | None, subject: str | None, domain: str | None,
              url_host: str | None, attachment: str | None, since: str | None, until: str | None) -> Any:
    from mailwarden.gateway.archive import ArchiveError, ArchiveQuery

    query = ArchiveQuery(sender=sender, recipient=recipient, subject=subject, domain=domain, url_host=url_host,
                         attachment=attachment, since=_time(since, "--since"), until=_time(until, "--until"))
    try:
        return query.normalised()
    except ArchiveError as exc:
        raise _usage(str(exc)) from exc


@messages_app.command("search")
def messages_search(ctx: typer.Context, sender: Sender = None, recipient: Recipient = None, subject: Subject = None,
                    domain: Domain = None, url_host: UrlHost = None, attachment: Attachment = None,
                    since: Since = None, until: Until = None,
                    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
                    output_format: Annotated[ListFormat, typer.Option("--format")] = ListFormat.TABLE) -> None:
    """Archived messages matching every criterion given, newest first."""
    from mailwarden.gateway import archive

    criteria = _criteria(sender, recipient, subject, domain, url_host, attachment, since, until)
    engine = _engine(ctx)
    try:
        rows = list(_all_pages(lambda c: archive.search(engine, criteria, cursor=c), limit))
    finally:
        engine.dispose()
    if output_format is ListFormat.TABLE:
        for row in rows:
            row["recipients"] = ", ".join(row["recipients"])
    _print_rows(rows, ["id", "received_at", "verdict", "score", "mail_from", "header_from", "recipients", "subject"],
                output_format)


@messages_app.command("show")
def messages_show(ctx: typer.Context, archive_id: Annotated[int, typer.Argument(help="The archive id.")],
                  raw: Annotated[bool, typer.Option("--raw", help="The message as received, to stdout.")] = False
                  ) -> None:
    """One archived message: its facts and the indicators it carried (JSON), or the message itself."""
    from mailwarden.gateway import archive
    from mailwarden.store.blobs import BlobError

    engine = _engine(ctx)
    try:
        if raw:
            try:
                data = archive.raw(engine, _blobs(ctx), archive_id)
            except BlobError as exc:
                raise _failed(str(exc)) from exc
            if data is None:
                raise _failed(f"no archived message {archive_id}")
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return
        found = archive.get(engine, archive_id)
    finally:
        engine.dispose()
    if found is None:
        raise _failed(f"no archived message {archive_id}")
    typer.echo(json.dumps(found, ensure_ascii=False, indent=2))


@messages_app.command("delete")
def messages_delete(ctx: typer.Context,
                    ids: Annotated[list[int] | None, typer.Argument(help="Archive ids (or give criteria).")] = None,
                    sender: Sender = None, recipient: Recipient = None, subject: Subject = None,
                    domain: Domain = None, url_host: UrlHost = None, attachment: Attachment = None,
                    since: Since = None, until: Until = None,
                    by: Annotated[str | None, typer.Option("--by", help="Who removes (default: $USER).")] = None,
                    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would go.")] = False
                    ) -> None:
    """Remove archived messages (and their copies still held in quarantine), by id or by query."""
    from mailwarden.gateway import archive

    criteria = _criteria(sender, recipient, subject, domain, url_host, attachment, since, until)
    if bool(ids) == (not criteria.empty):
        raise _usage("give archive ids or search criteria (one of the two)")
    who = by or f"cli:{os.environ.get('USER', 'unknown')}"
    engine = _engine(ctx)
    try:
        if dry_run:
            count = len(ids or ()) if ids else archive.count(engine, criteria)
            typer.echo(f"{count} messages would be removed")
            return
        if ids:
            removal = archive.remove(engine, _blobs(ctx), who=who, now=_now(), ids=ids, spool=_spool(ctx))
        else:
            removal = archive.remove(engine, _blobs(ctx), who=who, now=_now(), query=criteria, spool=_spool(ctx))
    finally:
        engine.dispose()
    typer.echo(f"removed {removal.count} messages ({removal.quarantined} held in quarantine); "
               f"removal log entry {removal.removal_id}")
    if ids and removal.count < len(set(ids)):
        raise _failed(f"{len(set(ids)) - removal.count} of the ids were not in the archive")


@messages_app.command("prune")
def messages_prune(ctx: typer.Context, config: ConfigOption = None,
                   days: Annotated[float | None, typer.Option("--days", min=0, help="Keep this many days "
                                                              "(default: [gateway] archive_days)")] = None,
                   orphans: Annotated[bool, typer.Option("--orphans", help="Also remove blob files no archive "
                                                         "entry refers to (older than an hour).")] = False) -> None:
    """Retention: remove what was received before the archive's retention period."""
    from mailwarden.gateway import archive
    from mailwarden.gateway.settings import load_gateway_settings

    try:
        keep = days if days is not None else load_gateway_settings(config).archive_days
    except ConfigError as exc:
        raise _usage(str(exc)) from exc
    now = _now()
    engine = _engine(ctx)
    try:
        removal = archive.prune(engine, _blobs(ctx), older_than=now - timedelta(days=keep), now=now)
        swept = archive.sweep_orphans(engine, _blobs(ctx)) if orphans else 0
    finally:
        engine.dispose()
    typer.echo(f"removed {removal.count} messages received before {(now - timedelta(days=keep)).isoformat()}")
    if orphans:
        typer.echo(f"removed {swept} unreferenced blob files")


def logs_removals(ctx: typer.Context, since: Since = None, until: Until = None,
                  who: Annotated[str | None, typer.Option("--who", help="Only removals by this actor.")] = None,
                  limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows.")] = 100,
                  output_format: Annotated[ListFormat, typer.Option("--format")] = ListFormat.JSONL) -> None:
    """Removals from the archive (who, when, what query, how many), newest first."""
    from mailwarden.gateway import archive

    start, end = _time(since, "--since"), _time(until, "--until")
    engine = _engine(ctx)
    try:
        rows = list(_all_pages(lambda c: archive.list_removals(engine, since=start, until=end, who=who, cursor=c),
                               limit))
    finally:
        engine.dispose()
    if output_format is ListFormat.TABLE:
        for row in rows:
            row["query"] = json.dumps(row["query"], ensure_ascii=False)
    _print_rows(rows, ["id", "time", "who", "query", "count"], output_format)


def register(app: typer.Typer, logs_app: typer.Typer) -> None:
    app.add_typer(messages_app, name="messages")
    logs_app.command("removals")(logs_removals)
