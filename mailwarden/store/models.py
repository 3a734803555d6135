"""The database schema, as SQLAlchemy 2 typed declarative models.

One ``profiles`` row per learned correspondent (a sender address or a registrable domain). The learned
sets live in JSON columns as sorted lists, one column per ``Profile.SET_FIELDS`` entry, so that loading
every profile is a single ``SELECT`` without joins and each set can still be queried (JSONB on
PostgreSQL). Times are stored in UTC and always come back timezone-aware, on SQLite as well.

The migrations in ``migrations/versions`` create this schema; a test checks the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Integer,
    MetaData,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

# Fixed constraint names, so that later migrations can refer to them on every dialect.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC.

    SQLite has no timezone type and SQLAlchemy drops the offset there, so values are converted to UTC
    before they are written and marked as UTC when read; PostgreSQL ``timestamptz`` round-trips the
    same way.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored; give it a timezone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_list() -> TypeEngine[Any]:
    """A list of strings as JSON; JSONB on PostgreSQL so sets can be indexed and searched later."""
    return JSON().with_variant(JSONB(), "postgresql")


def big_id() -> TypeEngine[int]:
    """A 64-bit key on PostgreSQL; plain INTEGER on SQLite, where only that is an autoincrementing rowid."""
    return BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ProfileRow(Base):
    """A stored ``mailwarden.profiles.Profile``."""

    __tablename__ = "profiles"
    __table_args__ = (
        UniqueConstraint("kind", "key"),
        CheckConstraint("kind IN ('sender', 'domain')", name="kind"),
    )

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, server_default="0")
    display_names: Mapped[list[str]] = mapped_column(json_list(), server_default="[]")
    sending_domains: Mapped[list[str]] = mapped_column(json_list(), server_default="[]")
    dkim_domains: Mapped[list[str]] = mapped_column(json_list(), server_default="[]")
    spf_domains: Mapped[list[str]] = mapped_column(json_list(), server_default="[]")
    reply_to_domains: Mapped[list[str]] = mapped_column(json_list(), server_default="[]")
    ips: Mapped[list[str]] = mapped_column(json_list(), server_default="[]")
    mailers: Mapped[list[str]] = mapped_column(json_list(), server_default="[]")
    recipients: Mapped[list[str]] = mapped_column(json_list(), server_default="[]")
    payment_ids: Mapped[list[str]] = mapped_column(json_list(), server_default="[]")
    thread_ids: Mapped[list[str]] = mapped_column(json_list(), server_default="[]")
    link_domains: Mapped[list[str]] = mapped_column(json_list(), server_default="[]")
    networks: Mapped[list[str]] = mapped_column(json_list(), server_default="[]")
    message_id_styles: Mapped[list[str]] = mapped_column(json_list(), server_default="[]")


# Tables kept in modules of their own, on the same metadata (imported last: they need Base).
from mailwarden.dmarc import models as _dmarc_models  # noqa: E402, F401  (DMARC reports, migration 0004)
from mailwarden.intel import models as _intel_models  # noqa: E402, F401  (indicator store, migration 0007)
from mailwarden.store import archive_models as _archive_models  # noqa: E402, F401  (archive, migration 0006)
from mailwarden.store import gateway_models as _gateway_models  # noqa: E402, F401  (gateway, migration 0003)
from mailwarden.store import lookalike_models as _lookalike_models  # noqa: E402, F401  (lookalike watch, 0005)
