"""The Rejection Log (every message refused at SMTP time) and the Release Log (every quarantined message
someone released), with time-range and reason filters and cursor pagination.

"Released despite a DMARC failure" is one query: ``list_releases(engine, dmarc="fail")``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, insert, select

from mailwarden.gateway.paging import DEFAULT_LIMIT, Page, page
from mailwarden.store.models import Base

REJECTIONS: Table = Base.metadata.tables["rejection_log"]
RELEASES: Table = Base.metadata.tables["release_log"]
REJECTION_REASONS = ("dmarc", "threat", "protocol")


def record_rejection(connection: Connection, *, time: datetime, client_ip: str, helo: str, mail_from: str,
                     recipients: list[str], header_from: str, message_id: str, reason: str, detail: str,
                     dmarc: str = "", verdict: str = "", score: int = 0,
                     signals: list[dict[str, Any]] | None = None) -> None:
    connection.execute(insert(REJECTIONS).values(
        time=time, client_ip=client_ip, helo=helo, mail_from=mail_from, recipients=recipients,
        header_from=header_from, message_id=message_id, reason=reason, detail=detail, dmarc=dmarc,
        verdict=verdict, score=score, signals=signals or []))


def record_release(connection: Connection, **values: Any) -> None:
    connection.execute(insert(RELEASES).values(**values))


def list_rejections(engine: Engine, *, since: datetime | None = None, until: datetime | None = None,
                    reason: str | None = None, cursor: str | None = None, limit: int = DEFAULT_LIMIT) -> Page:
    query = select(REJECTIONS)
    if since is not None:
        query = query.where(REJECTIONS.c.time >= since)
    if until is not None:
        query = query.where(REJECTIONS.c.time < until)
    if reason:
        query = query.where(REJECTIONS.c.reason == reason)
    with engine.connect() as connection:
        return page(connection, REJECTIONS, query, cursor, limit)


def list_releases(engine: Engine, *, since: datetime | None = None, until: datetime | None = None,
                  dmarc: str | None = None, verdict: str | None = None, who: str | None = None,
                  cursor: str | None = None, limit: int = DEFAULT_LIMIT) -> Page:
    query = select(RELEASES)
    if since is not None:
        query = query.where(RELEASES.c.time >= since)
    if until is not None:
        query = query.where(RELEASES.c.time < until)
    if dmarc:
        query = query.where(RELEASES.c.dmarc == dmarc)
    if verdict:
        query = query.where(RELEASES.c.verdict == verdict)
    if who:
        query = query.where(RELEASES.c.who == who)
    with engine.connect() as connection:
        return page(connection, RELEASES, query, cursor, limit)
