"""The domain-similarity tables: suggested partners, the lookalike watch, its indicators and notifications.

Registered on the same ``Base`` as the profiles (``models.py`` imports this module); migration 0005 creates them.

    protected_domains        domains protected besides org.toml's (``domains suggest --protect-top N``);
                             ``Context.for_org`` and the watch read them
    lookalike_domains        every candidate the watch looked up, or a lookalike seen in mail: what it imitates,
                             by which technique, its DNS status, when first and last seen registered, MX, A, AAAA,
                             NS, DNSBL listings
    lookalike_indicators     registered lookalikes as indicators for sharing (source ``lookalike-watch``)
    lookalike_notifications  who was told about which lookalike, when, by mail or webhook (one row each)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Index, Integer, Text, UniqueConstraint, false
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from mailwarden.store.models import Base, UTCDateTime, big_id

STATUSES = ("registered", "unregistered", "wildcard", "unknown", "seen")
NOTIFY_STATES = ("sending", "sent", "failed")


def json_value() -> TypeEngine[Any]:
    return JSON().with_variant(JSONB(), "postgresql")


class ProtectedDomainRow(Base):
    """A domain protected besides org.toml's own and partner domains."""

    __tablename__ = "protected_domains"

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    domain: Mapped[str] = mapped_column(Text, unique=True)
    source: Mapped[str] = mapped_column(Text)  # suggested | manual
    messages: Mapped[int] = mapped_column(Integer, server_default="0")  # learned volume when it was added
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LookalikeRow(Base):
    """One lookalike candidate and what DNS (or mail) said about it."""

    __tablename__ = "lookalike_domains"
    __table_args__ = (
        CheckConstraint("status IN ('registered', 'unregistered', 'wildcard', 'unknown', 'seen')", name="status"),
        Index("ix_lookalike_domains_status_last_checked", "status", "last_checked"),
    )

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    domain: Mapped[str] = mapped_column(Text, unique=True)  # ASCII (punycode)
    protected_domain: Mapped[str] = mapped_column(Text, index=True)
    kind: Mapped[str] = mapped_column(Text)  # own | partner | protected
    technique: Mapped[str] = mapped_column(Text)
    score: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text, server_default="")  # why unknown or wildcard
    last_checked: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    first_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # registered or in mail
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    mail_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    mx: Mapped[bool] = mapped_column(Boolean, server_default=false())
    a: Mapped[bool] = mapped_column(Boolean, server_default=false())
    aaaa: Mapped[bool] = mapped_column(Boolean, server_default=false())
    ns: Mapped[bool] = mapped_column(Boolean, server_default=false())
    records: Mapped[Any] = mapped_column(json_value())  # {"A": [...], "AAAA": [...], "MX": [...], "NS": [...]}
    dnsbl: Mapped[Any] = mapped_column(json_value())  # [{"zone": ..., "codes": [...], "meanings": [...]}]


class LookalikeIndicatorRow(Base):
    """A lookalike domain as an indicator to share, with its confidence and tags."""

    __tablename__ = "lookalike_indicators"
    __table_args__ = (UniqueConstraint("type", "value", "source"),)

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(Text)  # domain
    value: Mapped[str] = mapped_column(Text, index=True)
    confidence: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)  # lookalike-watch | lookalike-mail
    tags: Mapped[list[str]] = mapped_column(json_value())
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    sightings: Mapped[int] = mapped_column(Integer, server_default="1")


class LookalikeNotificationRow(Base):
    """One partner contact (or the webhook) told about one lookalike of an own domain."""

    __tablename__ = "lookalike_notifications"
    __table_args__ = (
        UniqueConstraint("lookalike", "channel", "recipient"),
        CheckConstraint("state IN ('sending', 'sent', 'failed')", name="state"),
    )

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    lookalike: Mapped[str] = mapped_column(Text, index=True)
    protected_domain: Mapped[str] = mapped_column(Text)
    partner: Mapped[str] = mapped_column(Text, server_default="")
    channel: Mapped[str] = mapped_column(Text)  # mail | webhook
    recipient: Mapped[str] = mapped_column(Text)  # the contact's address, or the webhook URL
    state: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    error: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
