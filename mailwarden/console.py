"""The ``mailwarden`` console script: ``dmarc parse`` answered without loading the command-line framework.

Scripts run ``mailwarden dmarc parse --format jsonl FILE...`` over many small reports, often once per
report as they arrive. Loading typer, and the pydantic it validates every option with, takes longer than
parsing a few hundred small reports (about 0.12 s against 0.05 s for everything ``parse`` itself needs).
So ``main`` answers that command itself when it is given in its plain form::

    mailwarden dmarc parse [--format jsonl] [--] FILE...

and hands everything else (other commands, ``--help``, other options, a missing file, any mistake) to the
typer application in ``mailwarden.cli``, which therefore gives every usage message. Both print the same
bytes: they run the same function, ``mailwarden.dmarc.output.write_files``. ``python -m mailwarden.cli``
always takes the typer path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def plain_dmarc_parse(argv: list[str]) -> list[Path] | None:
    """The files of a plain ``dmarc parse`` command line, or None when typer must read the command line."""
    if argv[:2] != ["dmarc", "parse"]:
        return None
    names: list[str] = []
    rest = argv[2:]
    index = 0
    while index < len(rest):
        token = rest[index]
        if token == "--":
            names.extend(rest[index + 1:])
            break
        if token == "--format" and rest[index + 1:index + 2] == ["jsonl"]:
            index += 2
            continue
        if token == "--format=jsonl":
            index += 1
            continue
        if token.startswith("-"):
            return None
        names.append(token)
        index += 1
    if not names:
        return None
    from mailwarden.errors import MailwardenError
    from mailwarden.sources import expand_paths

    try:
        return expand_paths(names)
    except MailwardenError:
        return None  # typer says what is wrong, as for any other usage error


def main() -> None:
    paths = plain_dmarc_parse(sys.argv[1:])
    if paths is not None:
        from mailwarden.dmarc.output import write_files

        try:
            write_files(paths, sys.stdout)
        except BrokenPipeError:  # the reader went away (``| head``): exit 1 quietly, as click does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(1) from None
        return
    from mailwarden.cli import main as typer_main

    typer_main()


if __name__ == "__main__":
    main()
