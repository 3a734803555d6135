"""``mailwarden dmarc``: DMARC aggregate, failure and SMTP TLS reports, and the DNS posture of domains.

    mailwarden dmarc parse FILE... [--format jsonl|table]
    mailwarden [--data-dir DIR] dmarc ingest PATH... [--config org.toml]
    mailwarden [--data-dir DIR] dmarc report [--domain D] [--since WHEN] [--limit N] [--format table|jsonl]
    mailwarden [--data-dir DIR] dmarc imap --host H [--port P] --user U --password-env VAR
                                          [--folder INBOX] [--processed-folder F] [--invalid-folder F]
    mailwarden dmarc posture [DOMAIN...] [--config org.toml] [--partner D]... [--selector S]...
                             [--resolver HOST:PORT] [--format table|jsonl]

``parse`` prints one JSON line per report found (parsedmarc's field names; see the README):
``{"file": ..., "report_type": "aggregate|failure|smtp_tls", "report": {...}}`` or
``{"file": ..., "error": ...}``. Exit status 0 when the command ran (bad reports are reported per
file), 2 on usage errors, 1 when the database or the mailbox cannot be used.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mailwarden.errors import MailwardenError

if TYPE_CHECKING:
    from mailwarden.config import OrgConfig, Settings

app = typer.Typer(help="DMARC aggregate, failure and SMTP TLS reports; DNS posture of domains.",
                  no_args_is_help=True)


class ParseFormat(StrEnum):
    JSONL = "jsonl"
    TABLE = "table"


class ReportFormat(StrEnum):
    TABLE = "table"
    JSONL = "jsonl"


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code=code)


def _files(paths: list[str]) -> list[Path]:
    from mailwarden.sources import expand_paths

    try:
        return expand_paths(paths)
    except MailwardenError as exc:
        raise _fail(str(exc)) from exc


def _org(config: Path | None) -> OrgConfig:
    from mailwarden.config import OrgConfig, load_org

    if config is None:
        return OrgConfig()
    try:
        return load_org(config)
    except MailwardenError as exc:
        raise _fail(str(exc)) from exc


# --- parse -------------------------------------------------------------------------------------------

@app.command()
def parse(
    files: Annotated[list[str], typer.Argument(help="Report files (XML, JSON, .gz, .zip, .eml) or directories.")],
    output_format: Annotated[ParseFormat, typer.Option("--format", help="jsonl: one JSON object per report; "
                                                       "table: a summary for people.")] = ParseFormat.JSONL,
) -> None:
    """Parse reports and print each one (parsedmarc's JSON field names), or why a file holds none."""
    from mailwarden.dmarc.output import write_files

    paths = _files(files)
    if output_format is ParseFormat.TABLE:
        _parse_table(paths)
        return
    write_files(paths, sys.stdout)  # also what the console script runs for a plain "dmarc parse" (console.py)


def _parse_table(paths: list[Path]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from mailwarden.dmarc.parser import materialise, parse_path
    from mailwarden.dmarc.reports import AggregateReport, FailureReport, SmtpTlsReport

    table = Table()
    for column in ("file", "type", "reporter", "report id", "domain", "messages", "detail"):
        table.add_column(column, overflow="fold")
    for path in paths:
        for found in materialise(parse_path(path)):
            name = escape(path.name)
            if isinstance(found, AggregateReport):
                meta, policy = found.header.metadata, found.header.policy
                failing = sum(r.count for r in found.records if not r.dmarc_pass)
                total = sum(r.count for r in found.records)
                table.add_row(name, "aggregate", escape(meta.org_name), escape(meta.report_id), escape(policy.domain),
                              str(total), f"{failing} failing DMARC, {len(found.records)} records")
            elif isinstance(found, FailureReport):
                table.add_row(name, "failure", "", "", escape(found.reported_domain), "1",
                              escape(f"from {found.source_ip}: {', '.join(found.auth_failure)}"))
            elif isinstance(found, SmtpTlsReport):
                ok = sum(p.successful_session_count for p in found.policies)
                bad = sum(p.failed_session_count for p in found.policies)
                table.add_row(name, "smtp_tls", escape(str(found.organization_name)), escape(str(found.report_id)),
                              escape(", ".join(str(p.policy_domain) for p in found.policies)), str(ok + bad),
                              f"{bad} failed TLS sessions")
            else:
                table.add_row(name, "[magenta]error[/]", "", "", "", "", escape(found.error))
    Console().print(table)


# --- ingest ------------------------------------------------------------------------------------------

def _since(text: str | None) -> datetime | None:
    """``7d``, ``12h``, ``2w`` ago, or an ISO date/time (UTC unless it says otherwise)."""
    if not text:
        return None
    text = text.strip()
    units = {"h": "hours", "d": "days", "w": "weeks"}
    if text[:-1].isdigit() and text[-1:].lower() in units:
        return datetime.now(UTC) - timedelta(**{units[text[-1].lower()]: int(text[:-1])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(f"--since {text!r}: expected 7d, 12h, 2w or an ISO date such as 2026-11-01") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@app.command()
def ingest(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Report files or directories (recursively).")],
    config: Annotated[Path | None, typer.Option("--config", help="Organisation config (org.toml): own domains, "
                                                "[dmarc] settings.", dir_okay=False)] = None,
    output_format: Annotated[ReportFormat, typer.Option("--format", help="jsonl: one object per file; "
                                                        "table: a summary.")] = ReportFormat.JSONL,
) -> None:
    """Store the reports in files (each report once, however often it is ingested); bad input is kept aside."""
    from mailwarden.dmarc.ingest import DmarcIngest
    from mailwarden.dmarc.settings import load_settings

    settings: Settings = ctx.obj
    org = _org(config)
    try:
        dmarc = load_settings(config)
    except MailwardenError as exc:
        raise _fail(str(exc)) from exc
    files = _files(paths)
    rows: list[dict[str, Any]] = []
    try:
        with DmarcIngest.open(settings, own_domains=org.domains, dmarc=dmarc) as store:
            for path in files:
                row = store.ingest_file(path).to_dict()
                if output_format is ReportFormat.JSONL:
                    sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
                    sys.stdout.flush()
                else:
                    rows.append(row)
    except MailwardenError as exc:
        raise _fail(str(exc), code=1) from exc
    if output_format is ReportFormat.TABLE:
        _ingest_table(rows)


def _ingest_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table()
    for column in ("file", "stored", "duplicates", "alerts", "errors"):
        table.add_column(column, overflow="fold")
    for row in rows:
        alerts = sum(len(r["alerts"]) for r in row["reports"])
        errors = "; ".join(e["error"] for e in row["errors"])
        table.add_row(escape(Path(row["source"]).name), str(row["stored"]), str(row["duplicates"]), str(alerts),
                      escape(errors))
    Console().print(table)


# --- report ------------------------------------------------------------------------------------------

@app.command()
def report(
    ctx: typer.Context,
    domain: Annotated[str | None, typer.Option("--domain", help="Only this domain (and its subdomains).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Reports from then on: 7d, 12h, 2w or an ISO date.")]
    = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="Rows per section.")] = 20,
    output_format: Annotated[ReportFormat, typer.Option("--format", help="table, or jsonl: one object per row "
                                                        "with its 'section'.")] = ReportFormat.TABLE,
) -> None:
    """What the stored aggregate reports say: per domain, reporter, source; failing sources; who sends as us."""
    from mailwarden.dmarc import queries
    from mailwarden.store import Store

    settings: Settings = ctx.obj
    start = _since(since)
    try:
        with Store.open(settings) as store:
            sections: dict[str, list[dict[str, Any]]] = {
                "domain": [s.to_dict() for s in queries.summary(store.engine, "domain", domain=domain, since=start,
                                                                limit=limit)],
                "org": [s.to_dict() for s in queries.summary(store.engine, "org", domain=domain, since=start,
                                                             limit=limit)],
                "network": [s.to_dict() for s in queries.summary(store.engine, "network", domain=domain, since=start,
                                                                 limit=limit)],
                "failing_source": [s.to_dict() for s in queries.top_failing_sources(store.engine, domain=domain,
                                                                                    since=start, limit=limit)],
                "sender": [s.to_dict() for s in queries.senders(store.engine, domain=domain, since=start,
                                                                limit=limit)],
                "alert": queries.recent_alerts(store.engine, domain=domain, since=start, limit=limit),
            }
    except MailwardenError as exc:
        raise _fail(str(exc), code=1) from exc
    if output_format is ReportFormat.JSONL:
        for section, rows in sections.items():
            for row in rows:
                sys.stdout.write(json.dumps({"section": section, **row}, ensure_ascii=False) + "\n")
        return
    _report_tables(sections)


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _report_tables(sections: dict[str, list[dict[str, Any]]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    titles = {"domain": "Per domain", "org": "Per reporting organisation", "network": "Per source network",
              "failing_source": "Top failing sources"}
    for section, title in titles.items():
        table = Table(title=title)
        for column in (section.replace("_", " "), "messages", "DMARC pass", "SPF pass", "DKIM pass", "SPF aligned",
                       "DKIM aligned", "none / quarantine / reject"):
            table.add_column(column, overflow="fold")
        for row in sections[section]:
            rates, disposition = row["rates"], row["disposition"]
            table.add_row(escape(row["key"]), str(row["messages"]), _percent(rates["dmarc_pass"]),
                          _percent(rates["spf_pass"]), _percent(rates["dkim_pass"]), _percent(rates["spf_aligned"]),
                          _percent(rates["dkim_aligned"]),
                          f"{disposition['none']} / {disposition['quarantine']} / {disposition['reject']}")
        console.print(table)
    colours = {"authorised": "green", "mixed": "yellow", "unknown": "red"}
    table = Table(title="Who sends as us")
    for column in ("source IP", "network", "messages", "DMARC pass", "From domains", "status"):
        table.add_column(column, overflow="fold")
    for row in sections["sender"]:
        table.add_row(escape(row["source_ip"]), escape(row["network"]), str(row["messages"]), str(row["dmarc_pass"]),
                      escape(", ".join(row["header_from"])), f"[{colours[row['status']]}]{row['status']}[/]")
    console.print(table)
    if sections["alert"]:
        table = Table(title="Alerts")
        for column in ("time", "kind", "domain", "source IP", "detail"):
            table.add_column(column, overflow="fold")
        for alert in sections["alert"]:
            table.add_row(escape(alert["created_at"][:19]), escape(alert["kind"]), escape(alert["domain"]),
                          escape(alert["source_ip"] or ""), escape(alert["detail"]))
        console.print(table)


# --- posture -----------------------------------------------------------------------------------------

@app.command()
def posture(
    domains: Annotated[list[str] | None, typer.Argument(help="Domains to check (default: the config's own and "
                                                         "partner domains).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Organisation config (org.toml): own and partner "
                                                "domains, [dns], [dmarc] dkim_selectors.", dir_okay=False)] = None,
    partner: Annotated[list[str] | None, typer.Option("--partner", help="Treat this domain as a partner's "
                                                      "(repeatable).")] = None,
    selector: Annotated[list[str] | None, typer.Option("--selector", help="A DKIM selector to try besides the "
                                                       "common ones (repeatable).")] = None,
    resolver: Annotated[list[str] | None, typer.Option("--resolver", help="DNS server HOST:PORT (repeatable).")]
    = None,
    output_format: Annotated[ReportFormat, typer.Option("--format", help="table, or jsonl: one object per "
                                                        "domain.")] = ReportFormat.TABLE,
) -> None:
    """SPF, DMARC, DKIM, MTA-STS, TLS-RPT and MX of domains, with the weaknesses and what to fix."""
    from dataclasses import replace

    from mailwarden.dmarc.posture import check_domains
    from mailwarden.dmarc.settings import load_settings
    from mailwarden.dns import live_resolver, parse_servers

    org = _org(config)
    try:
        settings = load_settings(config).posture
        servers = [s for item in (resolver or []) for s in item.split(",") if s.strip()]
        if servers:
            parse_servers(servers)
        dns = live_resolver(org.dns, servers)
    except MailwardenError as exc:
        raise _fail(str(exc)) from exc
    if selector:
        settings = replace(settings, dkim_selectors=tuple(dict.fromkeys(
            (*settings.dkim_selectors, *(s.strip().lower() for s in selector if s.strip())))))
    partners = {p.lower().rstrip(".") for p in partner or []}
    names = [d.lower().rstrip(".") for d in domains or []]
    if not names:
        names = list(org.domains) + [d for p in org.partners for d in p.domains]
    if not names:
        raise _fail("no domain given: name domains or give --config with own and partner domains")
    roles: dict[str, Any] = {}
    for name in names:
        if org.is_own_domain(name):
            roles[name] = "own"
        elif name in partners or org.partner_for_domain(name) is not None:
            roles[name] = "partner"
        else:
            roles[name] = "other"
    results = check_domains(dns, dict.fromkeys(names), roles, settings)
    if output_format is ReportFormat.JSONL:
        for result in results:
            sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        return
    _posture_table(results)


def _posture_table(results: list[Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    colours = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}
    console = Console()
    summary = Table(title="DNS posture")
    for column in ("domain", "role", "DMARC", "SPF lookups", "DKIM selectors", "MTA-STS", "TLS-RPT", "MX", "worst"):
        summary.add_column(column, overflow="fold")
    for result in results:
        dmarc = result.dmarc.get("strength", "?")
        found = [k["selector"] for k in result.dkim if not k["revoked"]]
        summary.add_row(escape(result.domain), result.role + (" [red](flagged)[/]" if result.partner_flag else ""),
                        escape(str(dmarc)), str(result.spf.get("lookups", "-")), escape(", ".join(found) or "-"),
                        "yes" if result.mta_sts else "no", "yes" if result.tls_rpt else "no", str(len(result.mx)),
                        f"[{colours.get(result.worst, 'green')}]{result.worst}[/]")
    console.print(summary)
    findings = Table(title="Weaknesses and what to fix")
    for column in ("domain", "severity", "check", "problem", "fix"):
        findings.add_column(column, overflow="fold")
    for result in results:
        for finding in result.findings:
            findings.add_row(escape(result.domain), f"[{colours[finding.severity]}]{finding.severity}[/]",
                             finding.check, escape(finding.problem), escape(finding.fix))
    console.print(findings)


# --- imap --------------------------------------------------------------------------------------------

@app.command()
def imap(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="IMAP server.")],
    user: Annotated[str, typer.Option("--user", help="Mailbox user.")],
    password_env: Annotated[str, typer.Option("--password-env", help="Environment variable holding the password.")],
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535, help="Port (993 with TLS, 143 without).")]
    = None,
    folder: Annotated[str, typer.Option("--folder", help="Where reports arrive.")] = "INBOX",
    processed_folder: Annotated[str, typer.Option("--processed-folder", help="Where stored messages are moved.")]
    = "DMARC/Processed",
    invalid_folder: Annotated[str, typer.Option("--invalid-folder", help="Where messages without a readable report "
                                                "are moved ('' to leave them).")] = "DMARC/Invalid",
    tls: Annotated[bool, typer.Option("--tls/--no-tls", help="Implicit TLS (IMAPS).")] = True,
    starttls: Annotated[bool, typer.Option("--starttls", help="Upgrade a plain connection with STARTTLS.")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="Organisation config (org.toml).", dir_okay=False)]
    = None,
    every: Annotated[int, typer.Option("--every", min=0, help="Poll again every N seconds (0: once).")] = 0,
) -> None:
    """Fetch reports from a mailbox, store them, then move each message (stored or invalid) out of the way."""
    import os
    import time

    from mailwarden.dmarc.imap import ImapAccount, poll
    from mailwarden.dmarc.ingest import DmarcIngest
    from mailwarden.dmarc.settings import load_settings

    settings: Settings = ctx.obj
    password = os.environ.get(password_env)
    if password is None:
        raise _fail(f"--password-env {password_env}: the variable is not set")
    org = _org(config)
    try:
        dmarc = load_settings(config)
    except MailwardenError as exc:
        raise _fail(str(exc)) from exc
    account = ImapAccount(host, port or (993 if tls else 143), user, password, tls, starttls)
    try:
        with DmarcIngest.open(settings, own_domains=org.domains, dmarc=dmarc) as store:
            while True:
                result = poll(account, store, folder=folder, processed_folder=processed_folder,
                              invalid_folder=invalid_folder or None)
                sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
                sys.stdout.flush()
                if not every:
                    break
                time.sleep(every)
    except MailwardenError as exc:
        raise _fail(str(exc), code=1) from exc
