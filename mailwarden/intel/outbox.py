"""Reading the ``events`` outbox for the sinks: cursors, and the webhook delivery table with its dead letters.

    new = events_after(connection, cursor, types, now)        # what a sink has not seen yet
    dispatch(engine, webhook, now)                            # events -> ``intel_deliveries`` rows (pending)
    claim(engine, sinks, now) -> [Delivery]                   # due deliveries, leased to this worker
    finish(engine, delivery, ok=..., status=..., error=..., webhook=..., now=...)   # delivered, retry or dead
    replay(engine, ids=[...] | state="dead", now=now)          # dead (or delivered) deliveries sent again

Events are written in the transactions that cause them (the gateway's decision, an indicator change), so
nothing is published that did not happen. A sink's cursor is the last event id it has taken; it only takes
events older than ``GRACE`` so that a transaction that got a smaller id but committed a moment later is not
skipped. Webhook deliveries are one row per (webhook, event): retried with exponential backoff
(``retry_base`` doubled per attempt, at most ``retry_max``), dead after ``max_attempts`` (the dead-letter list).
Claims take a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so several nodes share the work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Table, func, or_, select, update

from mailwarden.gateway.paging import DEFAULT_LIMIT, Page, page
from mailwarden.intel.settings import WebhookSettings
from mailwarden.intel.store import _insert
from mailwarden.store.db import begin_write
from mailwarden.store.models import Base

EVENTS: Table = Base.metadata.tables["events"]
CURSORS: Table = Base.metadata.tables["intel_cursors"]
DELIVERIES: Table = Base.metadata.tables["intel_deliveries"]
GRACE = timedelta(seconds=2)
BATCH = 500
LEASE = timedelta(minutes=5)


# --- cursors -------------------------------------------------------------------------------------------

def get_cursor(connection: Connection, name: str, *, lock: bool = False) -> Any:
    query = select(CURSORS.c.position).where(CURSORS.c.name == name)
    if lock and connection.dialect.name == "postgresql":
        query = query.with_for_update()
    row = connection.execute(query).first()
    return row.position if row is not None else None


def set_cursor(connection: Connection, name: str, position: Any, now: datetime) -> None:
    statement = _insert(connection, CURSORS).values(name=name, position=position, updated_at=now)
    connection.execute(statement.on_conflict_do_update(index_elements=["name"],
                                                       set_={"position": position, "updated_at": now}))


def start_position(connection: Connection, name: str, now: datetime) -> int:
    """A sink's last event id; a new sink starts at the newest event (it publishes from now on)."""
    found = get_cursor(connection, name, lock=True)
    if isinstance(found, dict) and isinstance(found.get("event_id"), int):
        return int(found["event_id"])
    newest = connection.execute(select(func.max(EVENTS.c.id))).scalar() or 0
    set_cursor(connection, name, {"event_id": int(newest)}, now)
    return int(newest)


def events_after(connection: Connection, after: int, types: Sequence[str], now: datetime,
                 limit: int = BATCH) -> tuple[list[dict[str, Any]], int]:
    """Events after id ``after`` (older than the grace time) of these types (all when empty), and the id reached."""
    query = select(EVENTS).where(EVENTS.c.id > after, EVENTS.c.created_at <= now - GRACE) \
        .order_by(EVENTS.c.id).limit(limit)
    rows = [dict(r._mapping) for r in connection.execute(query)]
    reached = rows[-1]["id"] if rows else after
    return [r for r in rows if not types or r["type"] in types], reached


def event_document(row: dict[str, Any]) -> dict[str, Any]:
    """An event as sinks send it."""
    return {"id": row["id"], "type": row["type"], "created_at": row["created_at"].isoformat(), "data": row["payload"]}


# --- webhook deliveries --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Delivery:
    id: int
    sink: str
    event_id: int
    attempts: int
    event: dict[str, Any]


def dispatch(engine: Engine, webhook: WebhookSettings, now: datetime) -> int:
    """Turn new events into pending deliveries for one webhook; returns how many were added."""
    added = 0
    while True:
        with begin_write(engine) as connection:
            after = start_position(connection, webhook.sink, now)
            rows, reached = events_after(connection, after, webhook.events, now)
            for row in rows:
                statement = _insert(connection, DELIVERIES).values(
                    sink=webhook.sink, event_id=row["id"], state="pending", attempts=0, next_attempt_at=now,
                    last_error="", created_at=now, updated_at=now)
                connection.execute(statement.on_conflict_do_nothing(index_elements=["sink", "event_id"]))
                added += 1
            if reached != after:
                set_cursor(connection, webhook.sink, {"event_id": reached}, now)
        if reached == after:
            return added


def claim(engine: Engine, sinks: Iterable[str], now: datetime, limit: int = 50) -> list[Delivery]:
    """Due deliveries of these sinks (pending, or delivering with a lapsed lease), leased to the caller."""
    names = list(sinks)
    if not names:
        return []
    with begin_write(engine) as connection:
        query = (select(DELIVERIES.c.id).where(DELIVERIES.c.sink.in_(names), or_(
            (DELIVERIES.c.state == "pending") & (DELIVERIES.c.next_attempt_at <= now),
            (DELIVERIES.c.state == "delivering") & (DELIVERIES.c.lease_until < now)))
            .order_by(DELIVERIES.c.next_attempt_at, DELIVERIES.c.id).limit(limit))
        if connection.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = [r.id for r in connection.execute(query)]
        if not ids:
            return []
        connection.execute(update(DELIVERIES).where(DELIVERIES.c.id.in_(ids))
                           .values(state="delivering", lease_until=now + LEASE, updated_at=now))
        rows = connection.execute(select(DELIVERIES, EVENTS.c.type, EVENTS.c.created_at.label("event_created_at"),
                                         EVENTS.c.payload)
                                  .join(EVENTS, EVENTS.c.id == DELIVERIES.c.event_id)
                                  .where(DELIVERIES.c.id.in_(ids)).order_by(DELIVERIES.c.id))
        return [Delivery(r.id, r.sink, r.event_id, r.attempts,
                         {"id": r.event_id, "type": r.type, "created_at": r.event_created_at.isoformat(),
                          "data": r.payload}) for r in rows]


def backoff(webhook: WebhookSettings, attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure: ``retry_base`` doubled each time, at most ``retry_max``."""
    return timedelta(seconds=min(webhook.retry_max, webhook.retry_base * 2 ** max(0, attempts - 1)))


def finish(engine: Engine, delivery: Delivery, *, ok: bool, status: int | None, error: str, webhook: WebhookSettings,
           now: datetime) -> str:
    """Record one attempt: delivered, pending again after the backoff, or dead. Returns the new state."""
    attempts = delivery.attempts + 1
    if ok:
        values: dict[str, Any] = {"state": "delivered", "delivered_at": now}
    elif attempts >= webhook.max_attempts:
        values = {"state": "dead"}
    else:
        values = {"state": "pending", "next_attempt_at": now + backoff(webhook, attempts)}
    with begin_write(engine) as connection:
        connection.execute(update(DELIVERIES).where(DELIVERIES.c.id == delivery.id).values(
            attempts=attempts, last_status=status, last_error=error[:500], lease_until=None, updated_at=now, **values))
    return str(values["state"])


def list_deliveries(engine: Engine, *, state: str | None = None, sink: str | None = None, cursor: str | None = None,
                    limit: int = DEFAULT_LIMIT) -> Page:
    query = select(DELIVERIES)
    if state:
        query = query.where(DELIVERIES.c.state == state)
    if sink:
        query = query.where(DELIVERIES.c.sink == sink)
    with engine.connect() as connection:
        return page(connection, DELIVERIES, query, cursor, limit)


def replay(engine: Engine, *, now: datetime, ids: Sequence[int] | None = None, state: str = "dead",
           sink: str | None = None) -> list[int]:
    """Send deliveries again from the first attempt: the given ids, or every one in ``state`` (dead by default)."""
    with begin_write(engine) as connection:
        query = select(DELIVERIES.c.id).where(DELIVERIES.c.state.in_(["dead", "delivered"]))
        query = query.where(DELIVERIES.c.id.in_(list(ids))) if ids is not None else \
            query.where(DELIVERIES.c.state == state)
        if sink:
            query = query.where(DELIVERIES.c.sink == sink)
        found = [r.id for r in connection.execute(query)]
        if found:
            connection.execute(update(DELIVERIES).where(DELIVERIES.c.id.in_(found)).values(
                state="pending", attempts=0, next_attempt_at=now, lease_until=None, last_error="", updated_at=now))
    return found


def replay_events(engine: Engine, webhook: WebhookSettings, *, since_event: int, now: datetime) -> int:
    """Queue every event after id ``since_event`` to ``webhook`` again (new or re-armed deliveries)."""
    count = 0
    with begin_write(engine) as connection:
        after = since_event
        while True:
            rows, reached = events_after(connection, after, webhook.events, now + GRACE)
            for row in rows:
                statement = _insert(connection, DELIVERIES).values(
                    sink=webhook.sink, event_id=row["id"], state="pending", attempts=0, next_attempt_at=now,
                    last_error="", created_at=now, updated_at=now)
                connection.execute(statement.on_conflict_do_update(
                    index_elements=["sink", "event_id"],
                    set_={"state": "pending", "attempts": 0, "next_attempt_at": now, "lease_until": None,
                          "updated_at": now}))
                count += 1
            if reached == after:
                return count
            after = reached
