"""Domain similarity: protected domains besides org.toml's, the lookalike watch, its indicators, notifications.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(JSONB(), "postgresql")
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    time = sa.DateTime(timezone=True)

    def pk() -> sa.Column[int]:
        return sa.Column("id", big_id, nullable=False, autoincrement=True)

    def text(name: str, default: str | None = None) -> sa.Column[str]:
        return sa.Column(name, sa.Text(), nullable=False, server_default=default)

    def flag(name: str) -> sa.Column[bool]:
        return sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())

    op.create_table(
        "protected_domains",
        pk(), text("domain"), text("source"), sa.Column("messages", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_protected_domains"),
        sa.UniqueConstraint("domain", name="uq_protected_domains_domain"),
    )

    op.create_table(
        "lookalike_domains",
        pk(), text("domain"), text("protected_domain"), text("kind"), text("technique"),
        sa.Column("score", sa.Integer(), nullable=False), text("status"), text("detail", ""),
        sa.Column("last_checked", time, nullable=True), sa.Column("first_seen", time, nullable=True),
        sa.Column("last_seen", time, nullable=True), sa.Column("reported_at", time, nullable=True),
        sa.Column("mail_seen_at", time, nullable=True), flag("mx"), flag("a"), flag("aaaa"), flag("ns"),
        sa.Column("records", json, nullable=False), sa.Column("dnsbl", json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lookalike_domains"),
        sa.UniqueConstraint("domain", name="uq_lookalike_domains_domain"),
        sa.CheckConstraint("status IN ('registered', 'unregistered', 'wildcard', 'unknown', 'seen')",
                           name="ck_lookalike_domains_status"),
    )
    op.create_index("ix_lookalike_domains_protected_domain", "lookalike_domains", ["protected_domain"])
    op.create_index("ix_lookalike_domains_status_last_checked", "lookalike_domains", ["status", "last_checked"])

    op.create_table(
        "lookalike_indicators",
        pk(), text("type"), text("value"), sa.Column("confidence", sa.Integer(), nullable=False), text("source"),
        sa.Column("tags", json, nullable=False), sa.Column("first_seen", time, nullable=False),
        sa.Column("last_seen", time, nullable=False),
        sa.Column("sightings", sa.Integer(), nullable=False, server_default="1"),
        sa.PrimaryKeyConstraint("id", name="pk_lookalike_indicators"),
        sa.UniqueConstraint("type", "value", "source", name="uq_lookalike_indicators_type_value_source"),
    )
    op.create_index("ix_lookalike_indicators_value", "lookalike_indicators", ["value"])

    op.create_table(
        "lookalike_notifications",
        pk(), text("lookalike"), text("protected_domain"), text("partner", ""), text("channel"), text("recipient"),
        text("state"), sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"), text("error", ""),
        sa.Column("created_at", time, nullable=False), sa.Column("updated_at", time, nullable=False),
        sa.Column("notified_at", time, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_lookalike_notifications"),
        sa.UniqueConstraint("lookalike", "channel", "recipient",
                            name="uq_lookalike_notifications_lookalike_channel_recipient"),
        sa.CheckConstraint("state IN ('sending', 'sent', 'failed')", name="ck_lookalike_notifications_state"),
    )
    op.create_index("ix_lookalike_notifications_lookalike", "lookalike_notifications", ["lookalike"])


def downgrade() -> None:
    for table in ("lookalike_notifications", "lookalike_indicators", "lookalike_domains", "protected_domains"):
        op.drop_table(table)
