"""The gateway: delivery queue, quarantine, rejection and release logs, API keys, events outbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(JSONB(), "postgresql")
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    time = sa.DateTime(timezone=True)

    def pk() -> sa.Column[int]:
        return sa.Column("id", big_id, nullable=False, autoincrement=True)

    def text(name: str, default: str | None = None, nullable: bool = False) -> sa.Column[str]:
        return sa.Column(name, sa.Text(), nullable=nullable, server_default=default)

    op.create_table(
        "gateway_queue",
        pk(), text("message_ref"), text("kind"), text("mail_from"),
        sa.Column("recipients", json, nullable=False), text("destination"), text("prepend", ""),
        text("banner", nullable=True), text("state"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", time, nullable=False), sa.Column("expires_at", time, nullable=False),
        sa.Column("created_at", time, nullable=False), sa.Column("updated_at", time, nullable=False),
        text("last_error", ""), text("claimed_by", nullable=True), sa.Column("lease_until", time, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_gateway_queue"),
        sa.CheckConstraint("state IN ('pending', 'delivering', 'delivered', 'failed', 'dropped')",
                           name="ck_gateway_queue_state"),
    )
    op.create_index("ix_gateway_queue_message_ref", "gateway_queue", ["message_ref"])
    op.create_index("ix_gateway_queue_state_next_attempt_at", "gateway_queue", ["state", "next_attempt_at"])

    op.create_table(
        "gateway_quarantine",
        pk(), text("message_ref"), text("message_id", ""), text("blob"), text("client_ip", ""), text("helo", ""),
        text("mail_from", ""), sa.Column("recipients", json, nullable=False), text("header_from", ""),
        text("subject", ""), text("verdict"), sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("signals", json, nullable=False), text("auth_results", ""), text("spf", ""), text("dkim", ""),
        text("dmarc", ""), sa.Column("received_at", time, nullable=False), text("state"),
        sa.Column("released_at", time, nullable=True), text("released_by", nullable=True),
        sa.Column("deleted_at", time, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_gateway_quarantine"),
        sa.UniqueConstraint("message_ref", name="uq_gateway_quarantine_message_ref"),
        sa.CheckConstraint("state IN ('held', 'released', 'deleted')", name="ck_gateway_quarantine_state"),
    )
    op.create_index("ix_gateway_quarantine_received_at", "gateway_quarantine", ["received_at"])

    op.create_table(
        "rejection_log",
        pk(), sa.Column("time", time, nullable=False), text("client_ip", ""), text("helo", ""), text("mail_from", ""),
        sa.Column("recipients", json, nullable=False), text("header_from", ""), text("message_id", ""),
        text("reason"), text("detail", ""), text("dmarc", ""), text("verdict", ""),
        sa.Column("score", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("signals", json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rejection_log"),
    )
    op.create_index("ix_rejection_log_time", "rejection_log", ["time"])
    op.create_index("ix_rejection_log_reason", "rejection_log", ["reason"])

    op.create_table(
        "release_log",
        pk(), sa.Column("time", time, nullable=False), text("who"), sa.Column("quarantine_id", big_id, nullable=False),
        text("message_ref"), text("message_id", ""), text("mail_from", ""), text("header_from", ""),
        sa.Column("recipients", json, nullable=False), text("verdict"),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("signals", json, nullable=False), text("spf", ""), text("dkim", ""), text("dmarc", ""),
        sa.PrimaryKeyConstraint("id", name="pk_release_log"),
    )
    op.create_index("ix_release_log_time", "release_log", ["time"])
    op.create_index("ix_release_log_dmarc", "release_log", ["dmarc"])

    op.create_table(
        "api_keys",
        pk(), text("key_id"), text("name"), text("salt"), text("hash"), sa.Column("scopes", json, nullable=False),
        sa.Column("created_at", time, nullable=False), sa.Column("revoked_at", time, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_id", name="uq_api_keys_key_id"),
    )

    op.create_table(
        "events",
        pk(), text("type"), sa.Column("created_at", time, nullable=False), sa.Column("payload", json, nullable=False),
        sa.Column("published_at", time, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_type", "events", ["type"])


def downgrade() -> None:
    for table in ("events", "api_keys", "release_log", "rejection_log", "gateway_quarantine", "gateway_queue"):
        op.drop_table(table)
