"""Where messages come from on the command line: files, directories (recursively) and mbox files."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mailwarden.errors import InputError

MAX_FILE_BYTES = 64 * 1024 * 1024
_MBOX_SEPARATOR = re.compile(rb"^From \S+ .*\d{4}\s*$")
_QUOTED_FROM = re.compile(rb"^>(>*From )")


@dataclass(frozen=True)
class RawMessage:
    """One message's bytes and where it came from (``file`` or ``file:N`` for the Nth of an mbox)."""

    name: str
    raw: bytes | None
    error: str | None = None


def expand_paths(paths: list[str]) -> list[Path]:
    """Files named directly, and every file below a named directory, in a stable order."""
    files: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
        elif path.exists():
            files.append(path)
        else:
            raise InputError(f"no such file or directory: {text}")
    return files


def _is_separator(line: bytes, previous_blank: bool) -> bool:
    return previous_blank and line.startswith(b"From ") and bool(_MBOX_SEPARATOR.match(line.rstrip(b"\r\n")))


def _mbox_chunks(handle: BinaryIO) -> Iterator[bytes]:
    """Split an mbox stream at its "From " lines, undoing ">From " quoting; one message in memory at a time."""
    lines: list[bytes] = []
    size = 0
    previous_blank = True
    for line in handle:
        if lines and _is_separator(line, previous_blank):
            yield b"".join(lines)
            lines, size = [], 0
        if size <= MAX_FILE_BYTES:
            lines.append(_QUOTED_FROM.sub(rb"\1", line) if line.startswith(b">") else line)
            size += len(line)
        previous_blank = line in (b"\n", b"\r\n")
    if lines:
        yield b"".join(lines)


def read_messages(path: Path) -> Iterator[RawMessage]:
    """Every message in one file (an mbox yields ``file:1``, ``file:2`` ...); errors become entries."""
    name = str(path)
    try:
        with path.open("rb") as handle:
            if handle.read(5) != b"From ":
                handle.seek(0)
                yield RawMessage(name, handle.read(MAX_FILE_BYTES))
                return
            handle.seek(0)
            chunks = _mbox_chunks(handle)
            first = next(chunks, b"")
            second = next(chunks, None)
            if second is None:
                yield RawMessage(name, first)
                return
            yield RawMessage(f"{name}:1", first)
            yield RawMessage(f"{name}:2", second)
            for index, chunk in enumerate(chunks, start=3):
                yield RawMessage(f"{name}:{index}", chunk)
    except OSError as exc:
        yield RawMessage(name, None, f"cannot read file: {exc.strerror or exc}")
