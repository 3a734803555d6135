"""``mailwarden auth``: debug an authentication verdict the way the gateway would reach it.

    mailwarden auth check FILE --client-ip IP --helo NAME --mail-from ADDR [--resolver HOST:PORT]
                               [--config org.toml] [--format json|text]

The resolver is ``--resolver``, else ``MAILWARDEN_RESOLVER``, else ``[dns]`` of the config, else the
machine's own. Exit status 0 when the check ran, 2 on usage errors.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from mailwarden.errors import MailwardenError

app = typer.Typer(help="Email authentication (SPF, DKIM, DMARC, ARC, DNSBL) evaluated live.", no_args_is_help=True)


class CheckFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code=2)


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="The message as received (RFC 5322 bytes).", exists=True,
                                         dir_okay=False, readable=True)],
    client_ip: Annotated[str, typer.Option("--client-ip", help="The connecting client's IP address.")],
    helo: Annotated[str, typer.Option("--helo", help="The name the client gave in HELO/EHLO.")] = "",
    mail_from: Annotated[str, typer.Option("--mail-from", help="The MAIL FROM address ('' for a bounce).")] = "",
    resolver: Annotated[list[str] | None, typer.Option("--resolver", help="DNS server HOST:PORT (repeatable).")]
    = None,
    config: Annotated[Path | None, typer.Option("--config", help="Organisation config (org.toml).",
                                                dir_okay=False)] = None,
    output_format: Annotated[CheckFormat, typer.Option("--format", help="json or text.")] = CheckFormat.JSON,
) -> None:
    """Authenticate one message from its envelope and DNS and print what each method found."""
    from mailwarden.auth import evaluate_message
    from mailwarden.auth.spf import client_address
    from mailwarden.config import OrgConfig, load_org
    from mailwarden.dns import live_resolver, parse_servers
    from mailwarden.message import Envelope, parse

    if client_address(client_ip) is None:
        raise _fail(f"--client-ip {client_ip!r} is not an IP address")
    try:
        org = load_org(config) if config else OrgConfig()
        servers = [s for item in (resolver or []) for s in item.split(",") if s.strip()]
        if servers:
            parse_servers(servers)
        dns = live_resolver(org.dns, servers)
    except MailwardenError as exc:
        raise _fail(str(exc)) from exc
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc}") from exc
    envelope = Envelope(client_ip=client_ip, helo=helo or None, mail_from=mail_from or None)
    message = parse(raw, envelope, authserv_id=org.authserv_id)
    verdict = evaluate_message(message, message.raw, dns, org.auth, org.domains)
    authserv_id = org.authserv_id or "mailwarden"
    if output_format is CheckFormat.JSON:
        typer.echo(json.dumps({**verdict.to_dict(), "authentication_results": verdict.header(authserv_id)},
                              ensure_ascii=False))
        return
    typer.echo(f"spf    {verdict.spf.result:10} {verdict.spf.domain}  {verdict.spf.reason}")
    for d in verdict.dkim or ():
        typer.echo(f"dkim   {d.result:10} d={d.domain} s={d.selector}  {d.reason}")
    if not verdict.dkim:
        typer.echo("dkim   none       (no signatures)")
    dmarc = verdict.dmarc
    override = f"  overridden by trusted ARC sealer {verdict.arc_override}" if verdict.arc_override else ""
    typer.echo(f"dmarc  {dmarc.result:10} {dmarc.domain} policy={dmarc.policy}  {dmarc.reason}{override}")
    typer.echo(f"arc    {verdict.arc.result:10} {', '.join(verdict.arc.sealers)}  {verdict.arc.reason}")
    for hit in verdict.dnsbl:
        typer.echo(f"dnsbl  listed     {hit.value} on {hit.zone}: {', '.join(hit.meanings)}")
    typer.echo("Authentication-Results: " + verdict.header(authserv_id).replace("\r\n", "\n"))
