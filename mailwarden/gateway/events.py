"""The events outbox: written in the same transaction as the decision, published later by the sinks.

    message.scanned    every message decided at SMTP time (verdict, score, signal ids, action)
    threat.detected    quarantined and rejected messages, with the indicators they carried
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, insert, select

from mailwarden.store.models import Base

EVENTS: Table = Base.metadata.tables["events"]
MESSAGE_SCANNED = "message.scanned"
THREAT_DETECTED = "threat.detected"


def add_event(connection: Connection, event_type: str, payload: dict[str, Any], now: datetime) -> None:
    connection.execute(insert(EVENTS).values(type=event_type, created_at=now, payload=payload))


def recent_events(connection: Connection, event_type: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    query = select(EVENTS).order_by(EVENTS.c.id.desc()).limit(limit)
    if event_type:
        query = query.where(EVENTS.c.type == event_type)
    return [dict(row._mapping) for row in connection.execute(query)]
