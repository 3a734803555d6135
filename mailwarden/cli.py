"""The ``mailwarden`` command line (contract in DESIGN.md).

    mailwarden [--data-dir DIR] learn --config org.toml PATH...
    mailwarden [--data-dir DIR] scan [--config org.toml] [--format jsonl|table] [--workers N] PATH...

Exit status: 0 when the command ran (unreadable messages are reported per file), 2 on usage errors.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from mailwarden.cli_auth import app as auth_app
from mailwarden.cli_dmarc import app as dmarc_app
from mailwarden.cli_domains import app as domains_app
from mailwarden.cli_gateway import register as register_gateway
from mailwarden.cli_intel import app as intel_app
from mailwarden.config import OrgConfig, Settings, load_org
from mailwarden.errors import ConfigError, MailwardenError

app = typer.Typer(
    help="Mailwarden: email defence against supply-chain attacks (lookalikes, vendor fraud, BEC, phishing).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class OutputFormat(StrEnum):
    JSONL = "jsonl"
    TABLE = "table"


@app.callback()
def main_options(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where state lives (default $MAILWARDEN_DATA_DIR or ./mailwarden-data).",
                     file_okay=False),
    ] = None,
) -> None:
    ctx.obj = Settings.from_env(data_dir)


def _usage_error(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code=2)


def _load_config(path: Path | None) -> OrgConfig:
    if path is None:
        return OrgConfig()
    try:
        return load_org(path)
    except MailwardenError as exc:
        raise _usage_error(str(exc)) from exc


def _expand(paths: list[str]) -> list[Path]:
    from mailwarden.sources import expand_paths

    try:
        return expand_paths(paths)
    except MailwardenError as exc:
        raise _usage_error(str(exc)) from exc


# --- scan ----------------------------------------------------------------------------------------

def _result_rows(files: list[Path], config: Path | None, settings: Settings, workers: int) -> Iterator[dict[str, Any]]:
    from mailwarden import scanner

    if workers <= 1 or len(files) < 2:
        for path in files:
            yield from scanner.scan_file(path)
        return
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(workers, scanner.init_worker, (config, settings)) as pool:
        for rows in pool.imap(scanner.scan_file, files, chunksize=8):
            yield from rows


def _print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    colours = {"deliver": "green", "warn": "yellow", "quarantine": "red", "reject": "bold red"}
    table = Table(show_lines=False)
    for column in ("file", "verdict", "score", "signals"):
        table.add_column(column, overflow="fold")
    for row in rows:
        if "error" in row:
            table.add_row(escape(row["file"]), "[magenta]error[/]", "", escape(row["error"]))
            continue
        signals = ", ".join(f"{s['id']} ({s['score']:+d})" for s in row["signals"] if s["score"])
        verdict = row["verdict"]
        table.add_row(escape(Path(row["file"]).name), f"[{colours[verdict]}]{verdict}[/]", str(row["score"]),
                      escape(signals))
    Console().print(table)


@app.command()
def scan(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Message files, directories (recursively) or mbox files.")],
    config: Annotated[Path | None, typer.Option("--config", help="Organisation config (org.toml).",
                                                dir_okay=False)] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="jsonl: one JSON object per message; "
                                                        "table: a summary for people.")] = OutputFormat.JSONL,
    workers: Annotated[int, typer.Option("--workers", min=1, max=256, help="Processes to scan with.")] = 1,
) -> None:
    """Scan messages and print one verdict per message, with the signals that decided it."""
    from mailwarden import scanner

    settings: Settings = ctx.obj
    _load_config(config)  # fail early, with a usage error, on a bad config
    files = _expand(paths)
    try:
        scanner.init_worker(config, settings)  # this process scans too; workers build their own
    except ConfigError as exc:
        raise _usage_error(str(exc)) from exc
    except MailwardenError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    rows_iter = _result_rows(files, config, settings, workers)
    show_progress = sys.stderr.isatty() and len(files) > 50
    if output_format is OutputFormat.TABLE:
        _print_table(list(_with_progress(rows_iter, len(files), show_progress)))
        return
    out = sys.stdout
    for row in _with_progress(rows_iter, len(files), show_progress):
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
    out.flush()


def _with_progress(rows: Iterator[dict[str, Any]], total: int, enabled: bool) -> Iterator[dict[str, Any]]:
    if not enabled:
        yield from rows
        return
    from rich.progress import Progress

    with Progress(transient=True, console=None) as progress:
        task = progress.add_task("scanning", total=total)
        last = None
        for row in rows:
            name = row["file"].rsplit(":", 1)[0] if ":" in row["file"] and not Path(row["file"]).exists() \
                else row["file"]
            if name != last:
                progress.advance(task)
                last = name
            yield row


# --- learn ---------------------------------------------------------------------------------------

@app.command()
def learn(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Past legitimate mail: files, directories or mbox files.")],
    config: Annotated[Path, typer.Option("--config", help="Organisation config (org.toml).", dir_okay=False)],
) -> None:
    """Learn how correspondents normally write from past legitimate mail (builds the profiles)."""
    from mailwarden.learning import learn_paths

    settings: Settings = ctx.obj
    org = _load_config(config)
    files = _expand(paths)
    try:
        summary = learn_paths(files, org, settings)
    except MailwardenError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"learned {summary.messages} messages ({summary.errors} unreadable): "
               f"{summary.senders} senders, {summary.domains} domains in {settings.data_dir}")


app.add_typer(auth_app, name="auth")
app.add_typer(domains_app, name="domains")
app.add_typer(dmarc_app, name="dmarc")
register_gateway(app)  # serve, queue, quarantine, logs, apikey
app.add_typer(intel_app, name="intel")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
