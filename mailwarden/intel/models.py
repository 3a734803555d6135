"""The indicator store's tables, on the shared ``Base`` (``store/models.py`` imports this module); migration 0007.

    intel_indicators   one row per (type, normalised value): confidence, severity, action, source, tags,
                       first/last seen, validity, revocation, sighting count
    intel_sightings    which message carried which indicator (message ref, Message-ID, verdict, when)
    intel_objects      every STIX version ever published (indicators, sightings, identities, relationships):
                       what the TAXII collection serves, in ``date_added`` order
    intel_audit        every change: who (API key, CLI user, detector), what, before and after
    intel_state        small counters: the list version the gateway reloads on, feed serials and ETags
    intel_cursors      how far each sink (webhook, syslog) and each pull source has got
    intel_deliveries   webhook deliveries: pending, delivered or dead (the dead-letter list), with retries
    intel_hunts        retro-hunts: what was found in kept mail and what was done about it
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from mailwarden.store.models import Base, UTCDateTime, big_id


def json_value() -> TypeEngine[Any]:
    return JSON().with_variant(JSONB(), "postgresql")


class IndicatorRow(Base):
    __tablename__ = "intel_indicators"
    __table_args__ = (
        UniqueConstraint("type", "value"),
        CheckConstraint("type IN ('domain', 'url', 'ipv4', 'ipv6', 'email-addr', 'file-sha256')", name="type"),
        CheckConstraint("action IN ('block', 'monitor')", name="action"),
        CheckConstraint("severity IN ('low', 'medium', 'high', 'critical')", name="severity"),
        CheckConstraint("confidence >= 0 AND confidence <= 100", name="confidence"),
        Index("ix_intel_indicators_action_revoked", "action", "revoked"),
        Index("ix_intel_indicators_type_id", "type", "id"),  # one type, newest first
    )

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    stix_id: Mapped[str] = mapped_column(Text, unique=True)
    type: Mapped[str] = mapped_column(Text)
    value: Mapped[str] = mapped_column(Text, index=True)
    confidence: Mapped[int] = mapped_column(Integer)
    severity: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text, index=True)
    tags: Mapped[list[str]] = mapped_column(json_value())
    description: Mapped[str] = mapped_column(Text, server_default="")
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    revoked: Mapped[bool] = mapped_column(Boolean, server_default=false())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_reason: Mapped[str] = mapped_column(Text, server_default="")
    sightings: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SightingRow(Base):
    __tablename__ = "intel_sightings"
    __table_args__ = (UniqueConstraint("indicator_id", "message_ref"),)

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    indicator_id: Mapped[int] = mapped_column(big_id(), ForeignKey("intel_indicators.id"))
    message_ref: Mapped[str] = mapped_column(Text, index=True)
    message_id: Mapped[str] = mapped_column(Text, server_default="")
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(Text)  # gateway | hunt | feed
    verdict: Mapped[str] = mapped_column(Text, server_default="")
    detail: Mapped[str] = mapped_column(Text, server_default="")


class StixObjectRow(Base):
    __tablename__ = "intel_objects"
    __table_args__ = (UniqueConstraint("stix_id", "version"),
                      Index("ix_intel_objects_date_added_id", "date_added", "id"))  # TAXII order

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    stix_id: Mapped[str] = mapped_column(Text, index=True)
    type: Mapped[str] = mapped_column(Text, index=True)
    version: Mapped[datetime] = mapped_column(UTCDateTime)
    date_added: Mapped[datetime] = mapped_column(UTCDateTime)
    indicator_id: Mapped[int | None] = mapped_column(big_id(), nullable=True, index=True)
    latest: Mapped[bool] = mapped_column(Boolean, server_default=true())  # the newest version of its object
    object: Mapped[Any] = mapped_column(json_value())


class AuditRow(Base):
    __tablename__ = "intel_audit"

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    indicator_id: Mapped[int | None] = mapped_column(big_id(), nullable=True, index=True)
    detail: Mapped[Any] = mapped_column(json_value())


class StateRow(Base):
    __tablename__ = "intel_state"

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    number: Mapped[int] = mapped_column(big_id(), server_default="0")
    text: Mapped[str] = mapped_column(Text, server_default="")
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CursorRow(Base):
    __tablename__ = "intel_cursors"

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    position: Mapped[Any] = mapped_column(json_value())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeliveryRow(Base):
    __tablename__ = "intel_deliveries"
    __table_args__ = (
        UniqueConstraint("sink", "event_id"),
        CheckConstraint("state IN ('pending', 'delivering', 'delivered', 'dead')", name="state"),
        Index("ix_intel_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    sink: Mapped[str] = mapped_column(Text)
    event_id: Mapped[int] = mapped_column(big_id())
    state: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class HuntRow(Base):
    __tablename__ = "intel_hunts"

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    indicator_id: Mapped[int] = mapped_column(big_id(), ForeignKey("intel_indicators.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    requested_by: Mapped[str] = mapped_column(Text)
    remediate: Mapped[bool] = mapped_column(Boolean, server_default=false())
    matches: Mapped[Any] = mapped_column(json_value())
    actions: Mapped[Any] = mapped_column(json_value())
    covered: Mapped[Any] = mapped_column(json_value())
