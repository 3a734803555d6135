"""``mailwarden domains``: ask the similarity engine whether domains imitate protected ones.

    mailwarden domains check [--config org.toml] [--protect DOMAIN]... [--allow DOMAIN]...
                             [--format jsonl|table] CANDIDATE...

Protected: the config's own and partner domains plus every ``--protect``; ``--allow`` names domains never to
flag. ``--format jsonl`` prints one object per candidate:
``{"domain": ..., "lookalike_of": "<protected>" | null, "technique": "..." | null, "score": 0-100}``.
Exit status 0 when the check ran, 2 on usage errors.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

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
