"""``mailwarden dmarc parse`` output: one JSON line per report found, or per input that held none.

    {"file": ..., "report_type": "aggregate|failure|smtp_tls", "report": {...}}
    {"file": ..., "error": "..."}                      ("part" is added when the report was inside the input)

An aggregate report is written only once it has been read to its end (an error at record 90,000 gives
an error line, never half a report); its records wait in memory up to ``SPOOL_IN_MEMORY`` characters and
in a temporary file beyond, so memory stays bounded however large the report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from mailwarden.dmarc.parser import Failed, Found, Item, parse_path
from mailwarden.dmarc.reports import AggregateHeader
from mailwarden.errors import ReportError

SPOOL_IN_MEMORY = 1024 * 1024  # characters of record JSON kept in memory; the rest waits in a temporary file


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _location(file: str, part: str) -> str:
    head = '{"file": ' + _dumps(file)
    return head + (', "part": ' + _dumps(part) if part else "")


def error_line(file: str, part: str, error: str) -> str:
    return _location(file, part) + ', "error": ' + _dumps(error) + "}\n"


def write_files(paths: Iterable[Path], out: IO[str]) -> None:
    """``dmarc parse --format jsonl``: every report in every file (the typer command and the console script)."""
    for path in paths:
        write_items(str(path), parse_path(path), out)
    out.flush()


def write_items(file: str, items: Iterable[Item], out: IO[str]) -> int:
    """Write a line per item; returns how many reports were written."""
    written = 0
    for item in items:
        if isinstance(item, Failed):
            out.write(error_line(file, item.part, item.error))
            continue
        if item.stream is None:
            assert item.report is not None
            out.write(_location(file, item.part) + ', "report_type": ' + _dumps(item.report_type)
                      + ', "report": ' + _dumps(item.report.to_dict()) + "}\n")
            written += 1
            continue
        written += _write_aggregate(file, item, out)
    return written


class _Spool:
    """Record JSON kept in memory up to ``SPOOL_IN_MEMORY`` characters, then in a temporary file."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.file: IO[str] | None = None

    def write(self, text: str) -> None:
        if self.file is not None:
            self.file.write(text)
            return
        self.parts.append(text)
        self.size += len(text)
        if self.size > SPOOL_IN_MEMORY:
            import tempfile

            self.file = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115 (closed by close())
            self.file.write("".join(self.parts))
            self.parts = []

    def copy_to(self, out: IO[str]) -> None:
        if self.file is None:
            out.write("".join(self.parts))
            return
        import shutil

        self.file.seek(0)
        shutil.copyfileobj(self.file, out)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _write_aggregate(file: str, item: Found, out: IO[str]) -> int:
    assert item.stream is not None
    spool = _Spool()
    try:
        header: AggregateHeader | None = None
        interval = ("", "")
        first = True
        try:
            for entry in item.stream:
                if isinstance(entry, AggregateHeader):
                    header, interval = entry, entry.interval
                    continue
                spool.write(entry.to_json(interval) if first else ", " + entry.to_json(interval))
                first = False
        except ReportError as exc:
            out.write(error_line(file, item.part, str(exc)))
            return 0
        assert header is not None
        head = _dumps(header.to_dict())
        out.write(_location(file, item.part) + ', "report_type": "aggregate", "report": ' + head[:-1]
                  + ', "records": [')
        spool.copy_to(out)
        out.write("]}}\n")
    finally:
        spool.close()
    return 1
