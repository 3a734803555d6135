"""``mailwarden domains``: ask the similarity engine whether domains imitate protected ones.

    mailwarden domains check [--config org.toml] [--protect DOMAIN]... [--allow DOMAIN]...
                             [--format jsonl|table] CANDIDATE...

    mailwarden domains suggest [--config org.toml] [--top N] [--format table|jsonl] [--protect-top N]
    mailwarden domains watch [--config org.toml] [--resolver HOST:PORT] [--format table|jsonl]
                             [--max-queries N] [--rate QPS] [--relay HOST:PORT] [--no-notify]

Protected: the config's own and partner domains plus every ``--protect``; ``--allow`` names domains never to
flag. ``--format jsonl`` prints one object per candidate:
``{"domain": ..., "lookalike_of": "<protected>" | null, "technique": "..." | null, "score": 0-100}``.

``suggest`` lists the domains learned mail came from, by volume, without own, partner and free-mail domains;
``--protect-top N`` protects the first N in the store (the engine and the watch then treat them as partners).
``watch`` looks the lookalikes of every protected domain up in DNS, keeps their state in the store, prints
only what is new since the last run (a summary goes to stderr) and tells partner contacts about lookalikes of
the own domains (``[notify]``). Exit status 0 when the command ran, 1 when the store failed, 2 on usage errors.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mailwarden.config import OrgConfig, Settings
from mailwarden.errors import MailwardenError

if TYPE_CHECKING:
    from mailwarden.domains import DomainIndex

app = typer.Typer(help="Lookalike domains of the organisation's and its partners' domains.", no_args_is_help=True)


class CheckFormat(StrEnum):
    JSONL = "jsonl"
    TABLE = "table"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code=2)


def _row(candidate: str, index: DomainIndex) -> dict[str, Any]:
    found = index.check(candidate)
    if found is None:
        return {"domain": candidate, "lookalike_of": None, "technique": None, "score": 0, "detail": ""}
    return {"domain": candidate, "lookalike_of": found.lookalike_of, "technique": found.technique,
            "score": found.score, "detail": found.detail}


def _print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table()
    for column in ("domain", "lookalike of", "technique", "score", "detail"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(escape(row["domain"]), escape(row["lookalike_of"] or "-"), escape(row["technique"] or "-"),
                      str(row["score"]), escape(row["detail"]))
    Console().print(table)


@app.command()
def check(
    candidates: Annotated[list[str], typer.Argument(help="Domains or host names to check.")],
    config: Annotated[Path | None, typer.Option("--config", help="Organisation config (org.toml): its own and "
                                                "partner domains are protected.", dir_okay=False)] = None,
    protect: Annotated[list[str] | None, typer.Option("--protect", help="Another domain to protect "
                                                      "(repeatable).")] = None,
    allow: Annotated[list[str] | None, typer.Option("--allow", help="A domain never to flag, with everything "
                                                    "below it (repeatable).")] = None,
    output_format: Annotated[CheckFormat, typer.Option("--format", help="jsonl: one JSON object per candidate; "
                                                       "table: a summary for people.")] = CheckFormat.JSONL,
) -> None:
    """Say for each candidate which protected domain it imitates, by which technique, and how surely."""
    from mailwarden.config import OrgConfig, load_org
    from mailwarden.domains import DomainIndex, ProtectedDomain, protected_for_org
    from mailwarden.domains.names import split_host

    try:
        org = load_org(config) if config else OrgConfig()
    except MailwardenError as exc:
        raise _fail(str(exc)) from exc
    for domain in [*(protect or []), *(allow or [])]:
        if split_host(domain) is None:
            raise _fail(f"{domain!r} is not a domain name with a public suffix")
    protected = protected_for_org(org) + [ProtectedDomain(d.strip().lower()) for d in protect or []]
    if not protected:
        raise _fail("nothing to protect: give --config with domains or partners, or --protect DOMAIN")
    index = DomainIndex(protected, allowed=allow or [])
    rows = [_row(candidate.strip().lower(), index) for candidate in candidates]
    if output_format is CheckFormat.TABLE:
        _print_table(rows)
        return
    for row in rows:
        typer.echo(json.dumps({k: row[k] for k in ("domain", "lookalike_of", "technique", "score")},
                              ensure_ascii=False))


# --- suggest -----------------------------------------------------------------------------------------------

ConfigOption = Annotated[Path | None, typer.Option("--config", help="Organisation config (org.toml).",
                                                   dir_okay=False)]


def _settings(ctx: typer.Context) -> Settings:
    found = ctx.find_root().obj
    return found if isinstance(found, Settings) else Settings.from_env()


def _org(config: Path | None) -> OrgConfig:
    from mailwarden.config import load_org

    try:
        return load_org(config) if config else OrgConfig()
    except MailwardenError as exc:
        raise _fail(str(exc)) from exc


def _failed(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code=1)


def _print_rows(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table()
    for _, title in columns:
        table.add_column(title, overflow="fold")
    for row in rows:
        table.add_row(*(escape(_cell(row.get(key))) for key, _ in columns))
    Console().print(table)


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "-"
    if isinstance(value, list):  # DNSBL listings by zone
        return ", ".join(str(v.get("zone", v)) if isinstance(v, dict) else str(v) for v in value) or "-"
    return "-" if value is None or value == "" else str(value)


@app.command()
def suggest(
    ctx: typer.Context,
    config: ConfigOption = None,
    top: Annotated[int, typer.Option("--top", min=1, help="How many domains to list.")] = 20,
    output_format: Annotated[CheckFormat, typer.Option("--format", help="table: for people; jsonl: one JSON "
                                                       "object per domain.")] = CheckFormat.TABLE,
    protect_top: Annotated[int | None, typer.Option("--protect-top", min=1, help="Protect the first N "
                                                    "suggestions in the store (lookalikes of them are flagged "
                                                    "and watched).")] = None,
) -> None:
    """List correspondent domains by learned mail volume, to add as partners; optionally protect the top N."""
    from datetime import UTC, datetime

    from mailwarden.detection import load_detection_data
    from mailwarden.domains.discovery import load_protected_domains, protect, suggest_partners
    from mailwarden.store import Store, load_profiles

    settings = _settings(ctx)
    org = _org(config)
    try:
        profiles = load_profiles(settings)
        stored = [p.domain for p in load_protected_domains(settings)]
        freemail = load_detection_data().freemail
        if protect_top:
            chosen = suggest_partners(profiles, org, freemail, stored, top=protect_top)
            with Store.open(settings) as store:
                added = protect(store.engine, chosen, datetime.now(UTC))
            stored += added
            if added:
                typer.echo(f"protected {len(added)} domain(s): {', '.join(added)}", err=True)
        rows = [s.to_dict() for s in suggest_partners(profiles, org, freemail, stored, top=top)]
    except MailwardenError as exc:
        raise _failed(str(exc)) from exc
    if not profiles.domains:
        typer.echo("no learned mail yet: run 'mailwarden learn' first", err=True)
    if output_format is CheckFormat.JSONL:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    days = [{**row, "first_seen": row["first_seen"][:10], "last_seen": row["last_seen"][:10]} for row in rows]
    _print_rows(days, [("domain", "domain"), ("messages", "messages"), ("senders", "senders"),
                       ("first_seen", "first seen"), ("last_seen", "last seen"), ("protected", "protected")])


# --- watch -------------------------------------------------------------------------------------------------

@app.command()
def watch(
    ctx: typer.Context,
    config: ConfigOption = None,
    resolver: Annotated[str | None, typer.Option("--resolver", help="HOST:PORT of the DNS resolver to ask "
                                                 "[default: MAILWARDEN_RESOLVER, [dns] resolvers, the system's]")]
    = None,
    output_format: Annotated[CheckFormat, typer.Option("--format", help="table: for people; jsonl: one JSON "
                                                       "object per new finding.")] = CheckFormat.TABLE,
    max_queries: Annotated[int | None, typer.Option("--max-queries", min=1, help="DNS queries at most in this "
                                                    "run [default: [watch] max_queries]; the rest waits for the "
                                                    "next run.")] = None,
    rate: Annotated[float | None, typer.Option("--rate", min=0.1, help="DNS queries per second at most "
                                               "[default: [watch] rate].")] = None,
    relay: Annotated[str | None, typer.Option("--relay", help="HOST:PORT of the SMTP relay for partner "
                                              "notifications [default: [notify] relay, MAILWARDEN_RELAY]")] = None,
    no_notify: Annotated[bool, typer.Option("--no-notify", help="Do not tell partners this run.")] = False,
) -> None:
    """Look up the lookalikes of every protected domain in DNS; print what is new; tell partner contacts."""
    import asyncio
    import os

    from mailwarden.dns import live_resolver
    from mailwarden.domains.discovery import as_protected, stored_protected
    from mailwarden.domains.notify import relay_address
    from mailwarden.domains.watch import run_watch
    from mailwarden.store import Store

    settings = _settings(ctx)
    org = _org(config)
    try:
        dns = live_resolver(org.dns, [resolver] if resolver else ())
        relay_address(org.notify, relay)
    except MailwardenError as exc:
        raise _fail(str(exc)) from exc
    secret_env = org.notify.webhook_secret_env
    if not no_notify and org.notify.webhook and not os.environ.get(secret_env):
        raise _fail(f"[notify] webhook: the secret variable {secret_env} is not set")
    try:
        with Store.open(settings) as store:
            extra = as_protected(stored_protected(store.engine))
            if not org.domains and not org.partners and not extra:
                raise _fail("nothing to protect: give --config with domains or partners, or protect suggested "
                            "partners with 'domains suggest --protect-top N'")
            report = asyncio.run(run_watch(store.engine, org, dns, extra=extra, max_queries=max_queries, rate=rate,
                                           notify=not no_notify, relay=relay))
    except MailwardenError as exc:
        raise _failed(str(exc)) from exc
    rows = [finding.to_dict() for finding in report.new]
    typer.echo("watch: " + json.dumps(report.summary()), err=True)
    for note in report.notifications:
        if note.state != "sent":
            typer.echo(f"notification to {note.recipient} about {note.lookalike} failed: {note.error}", err=True)
    if output_format is CheckFormat.JSONL:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    compact = [{**row, "seen": " ".join(t for t in ("NS", "A", "AAAA", "MX") if row[t.lower()])} for row in rows]
    _print_rows(compact, [("domain", "domain"), ("lookalike_of", "lookalike of"), ("technique", "technique"),
                          ("score", "score"), ("change", "new"), ("seen", "records"), ("dnsbl", "DNSBL")])
