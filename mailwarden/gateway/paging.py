"""Cursor pagination over id-ordered tables (newest first), and rows as JSON-ready dicts.

A cursor is the opaque, URL-safe encoding of the last id a page returned; the next page holds the rows
with smaller ids. Unlike offsets, it stays correct while new rows arrive.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, Table

from mailwarden.errors import MailwardenError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class CursorError(MailwardenError):
    """Raised when a pagination cursor was not made by us (malformed or tampered with)."""


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor}


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        kind, _, number = text.partition(":")
        if kind != "id" or not number.isdigit():
            raise ValueError(text)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise CursorError(f"invalid cursor {cursor[:40]!r}") from exc


def plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def row_dict(row: Any, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    return {key: plain(value) for key, value in row._mapping.items() if key not in exclude}


def page(connection: Connection, table: Table, query: Select[Any], cursor: str | None, limit: int,
         exclude: tuple[str, ...] = ()) -> Page:
    """One page of ``query`` (a select over ``table``), newest first, after the cursor."""
    limit = max(1, min(limit, MAX_LIMIT))
    if cursor:
        query = query.where(table.c.id < decode_cursor(cursor))
    rows = list(connection.execute(query.order_by(table.c.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([row_dict(r, exclude) for r in rows], encode_cursor(rows[-1].id) if more and rows else None)
