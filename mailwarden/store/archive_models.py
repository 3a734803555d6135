"""The archive's tables: every accepted message, the indicators it carried, and the removal log.

Registered on the same ``Base`` as the profiles (``models.py`` imports this module); migration 0006 creates
them (and the ``user_email`` of API keys, in ``gateway_models.py``).

    archive_messages     one row per accepted message: envelope, header From, subject, verdict, score, signals,
                         the action taken, and the content address (SHA-256) of its compressed blob
    archive_indicators   what a message can be found by, one row each: ``sender`` (MAIL FROM and header From),
                         ``recipient``, ``domain`` (sender, Reply-To and link domains), ``url_host``,
                         ``attachment`` (SHA-256); indexed (kind, value)
    archive_removals     the removal log: who removed what (the ids or the query), when, how many
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from mailwarden.store.models import Base, UTCDateTime, big_id, json_list

INDICATOR_KINDS = ("sender", "recipient", "domain", "url_host", "attachment")


def json_value() -> TypeEngine[Any]:
    return JSON().with_variant(JSONB(), "postgresql")


class ArchivedMessageRow(Base):
    """One accepted message in the archive."""

    __tablename__ = "archive_messages"

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    message_ref: Mapped[str] = mapped_column(Text, unique=True)  # the gateway's reference (queue, quarantine)
    message_id: Mapped[str] = mapped_column(Text, server_default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    client_ip: Mapped[str] = mapped_column(Text, server_default="")
    helo: Mapped[str] = mapped_column(Text, server_default="")
    mail_from: Mapped[str] = mapped_column(Text, server_default="")
    recipients: Mapped[list[str]] = mapped_column(json_list())
    header_from: Mapped[str] = mapped_column(Text, server_default="")
    subject: Mapped[str] = mapped_column(Text, server_default="")  # as sent: escape wherever it is shown
    verdict: Mapped[str] = mapped_column(Text)
    score: Mapped[int] = mapped_column(Integer)
    signals: Mapped[Any] = mapped_column(json_value())
    actions: Mapped[list[str]] = mapped_column(json_list())  # deliver | banner | quarantine (per recipient group)
    blob: Mapped[str] = mapped_column(Text, index=True)  # SHA-256 of the raw message: its content address
    size: Mapped[int] = mapped_column(Integer)


class ArchiveIndicatorRow(Base):
    """One thing an archived message can be found by."""

    __tablename__ = "archive_indicators"
    __table_args__ = (Index("ix_archive_indicators_kind_value", "kind", "value"),)

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    archive_id: Mapped[int] = mapped_column(big_id(), ForeignKey("archive_messages.id", ondelete="CASCADE"),
                                            index=True)
    kind: Mapped[str] = mapped_column(Text)
    value: Mapped[str] = mapped_column(Text)  # lower case


class ArchiveRemovalRow(Base):
    """One removal from the archive (a single message, a query, or retention)."""

    __tablename__ = "archive_removals"

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    who: Mapped[str] = mapped_column(Text)
    query: Mapped[Any] = mapped_column(json_value())  # {"ids": [...]} or the search filters
    count: Mapped[int] = mapped_column(Integer)
    message_refs: Mapped[list[str]] = mapped_column(json_list())  # the first MAX_LOGGED_REFS removed
