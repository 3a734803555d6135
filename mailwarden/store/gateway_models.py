"""The gateway's tables: delivery queue, quarantine, rejection and release logs, API keys, events outbox.

Registered on the same ``Base`` as the profiles (``models.py`` imports this module), so that one metadata
describes the whole schema; migration 0003 creates these tables.

    gateway_queue       one row per message and next hop; claimed by delivery workers (SKIP LOCKED on
                        PostgreSQL, one-writer UPDATE ... RETURNING on SQLite), retried with backoff
    gateway_quarantine  held messages: the raw blob in the data dir, the verdict and its evidence
    rejection_log       every message refused at SMTP time, with the DMARC result
    release_log         every quarantined message someone released, with its SPF/DKIM/DMARC results
    api_keys            salted hashes of API keys and their scopes
    events              the outbox later sinks publish from (message.scanned, threat.detected)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, Integer, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from mailwarden.store.models import Base, UTCDateTime, big_id, json_list

QUEUE_STATES = ("pending", "delivering", "delivered", "failed", "dropped")
QUARANTINE_STATES = ("held", "released", "deleted")


def json_value() -> TypeEngine[Any]:
    """Any JSON document (a list of signal objects, an event payload); JSONB on PostgreSQL."""
    return JSON().with_variant(JSONB(), "postgresql")


class QueueRow(Base):
    """A message waiting for (or done with) delivery to one next hop."""

    __tablename__ = "gateway_queue"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'delivering', 'delivered', 'failed', 'dropped')", name="state"),
        Index("ix_gateway_queue_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    message_ref: Mapped[str] = mapped_column(Text, index=True)
    kind: Mapped[str] = mapped_column(Text)  # message | release | dsn
    mail_from: Mapped[str] = mapped_column(Text)
    recipients: Mapped[list[str]] = mapped_column(json_list())
    destination: Mapped[str] = mapped_column(Text)
    prepend: Mapped[str] = mapped_column(Text, server_default="")  # header fields added in front, CRLF-ended
    banner: Mapped[str | None] = mapped_column(Text, nullable=True)  # the warn banner's reason, when warned
    state: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, server_default="")
    claimed_by: Mapped[str | None] = mapped_column(Text, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class QuarantineRow(Base):
    """A held message and why it was held."""

    __tablename__ = "gateway_quarantine"
    __table_args__ = (CheckConstraint("state IN ('held', 'released', 'deleted')", name="state"),)

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    message_ref: Mapped[str] = mapped_column(Text, unique=True)
    message_id: Mapped[str] = mapped_column(Text, server_default="")
    blob: Mapped[str] = mapped_column(Text)
    client_ip: Mapped[str] = mapped_column(Text, server_default="")
    helo: Mapped[str] = mapped_column(Text, server_default="")
    mail_from: Mapped[str] = mapped_column(Text, server_default="")
    recipients: Mapped[list[str]] = mapped_column(json_list())
    header_from: Mapped[str] = mapped_column(Text, server_default="")
    subject: Mapped[str] = mapped_column(Text, server_default="")
    verdict: Mapped[str] = mapped_column(Text)
    score: Mapped[int] = mapped_column(Integer)
    signals: Mapped[Any] = mapped_column(json_value())
    auth_results: Mapped[str] = mapped_column(Text, server_default="")
    spf: Mapped[str] = mapped_column(Text, server_default="")
    dkim: Mapped[str] = mapped_column(Text, server_default="")
    dmarc: Mapped[str] = mapped_column(Text, server_default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    state: Mapped[str] = mapped_column(Text)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    released_by: Mapped[str | None] = mapped_column(Text, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RejectionRow(Base):
    """One SMTP rejection (Rejection Log)."""

    __tablename__ = "rejection_log"

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    client_ip: Mapped[str] = mapped_column(Text, server_default="")
    helo: Mapped[str] = mapped_column(Text, server_default="")
    mail_from: Mapped[str] = mapped_column(Text, server_default="")
    recipients: Mapped[list[str]] = mapped_column(json_list())
    header_from: Mapped[str] = mapped_column(Text, server_default="")
    message_id: Mapped[str] = mapped_column(Text, server_default="")
    reason: Mapped[str] = mapped_column(Text, index=True)  # dmarc | threat | protocol
    detail: Mapped[str] = mapped_column(Text, server_default="")
    dmarc: Mapped[str] = mapped_column(Text, server_default="")
    verdict: Mapped[str] = mapped_column(Text, server_default="")
    score: Mapped[int] = mapped_column(Integer, server_default="0")
    signals: Mapped[Any] = mapped_column(json_value())


class ReleaseRow(Base):
    """One release of a quarantined message (Release Log)."""

    __tablename__ = "release_log"

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    who: Mapped[str] = mapped_column(Text)
    quarantine_id: Mapped[int] = mapped_column(big_id())
    message_ref: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(Text, server_default="")
    mail_from: Mapped[str] = mapped_column(Text, server_default="")
    header_from: Mapped[str] = mapped_column(Text, server_default="")
    recipients: Mapped[list[str]] = mapped_column(json_list())
    verdict: Mapped[str] = mapped_column(Text)
    score: Mapped[int] = mapped_column(Integer)
    signals: Mapped[Any] = mapped_column(json_value())
    spf: Mapped[str] = mapped_column(Text, server_default="")
    dkim: Mapped[str] = mapped_column(Text, server_default="")
    dmarc: Mapped[str] = mapped_column(Text, server_default="", index=True)


class ApiKeyRow(Base):
    """An API key: its public id, a salted hash of its secret, and its scopes."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    salt: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(Text)
    scopes: Mapped[list[str]] = mapped_column(json_list())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    user_email: Mapped[str | None] = mapped_column(Text, nullable=True)  # quarantine:own keys (migration 0006)


class EventRow(Base):
    """One event in the outbox, published later by the sinks."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(Text, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[Any] = mapped_column(json_value())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
