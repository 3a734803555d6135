"""``mailwarden dmarc parse`` output: one JSON line per report found, or per input that held none.

    {"file": ..., "report_type": "aggregate|failure|smtp_tls", "report": {...}}
    {"file": ..., "error": "..."}                      ("part" is added when the report was inside the input)

An aggregate report is written only once it has been read to its end (an error at record 90,000 gives
an error line, never half a report); its records wait in a spooled temporary file meanwhile, so memory
stays bounded however large the report.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable
from typing import IO, Any

from mailwarden.dmarc.parser import Failed, Found, Item
from mailwarden.dmarc.reports import AggregateHeader
from mailwarden.errors import ReportError

SPOOL_IN_MEMORY = 8 * 1024 * 1024  # records beyond this go to a temporary file until the report is complete


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _location(file: str, part: str) -> str:
    head = '{"file": ' + _dumps(file)
    return head + (', "part": ' + _dumps(part) if part else "")


def error_line(file: str, part: str, error: str) -> str:
    return _location(file, part) + ', "error": ' + _dumps(error) + "}\n"


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


def _write_aggregate(file: str, item: Found, out: IO[str]) -> int:
    assert item.stream is not None
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, mode="w+", encoding="utf-8") as spool:
        header: AggregateHeader | None = None
        interval = ("", "")
        separator = ""
        try:
            for entry in item.stream:
                if isinstance(entry, AggregateHeader):
                    header, interval = entry, entry.interval
                    continue
                spool.write(separator + entry.to_json(interval))
                separator = ", "
        except ReportError as exc:
            out.write(error_line(file, item.part, str(exc)))
            return 0
        assert header is not None
        head = _dumps(header.to_dict())
        out.write(_location(file, item.part) + ', "report_type": "aggregate", "report": ' + head[:-1]
                  + ', "records": [')
        spool.seek(0)
        shutil.copyfileobj(spool, out)
        out.write("]}}\n")
    return 1
