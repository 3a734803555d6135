"""The archive (messages, their indicators, the removal log) and API keys bound to a user (quarantine:own).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision: str | None = "0005"
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

    op.create_table(
        "archive_messages",
        pk(), text("message_ref"), text("message_id", ""), sa.Column("received_at", time, nullable=False),
        text("client_ip", ""), text("helo", ""), text("mail_from", ""), sa.Column("recipients", json, nullable=False),
        text("header_from", ""), text("subject", ""), text("verdict"), sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("signals", json, nullable=False), sa.Column("actions", json, nullable=False), text("blob"),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_archive_messages"),
        sa.UniqueConstraint("message_ref", name="uq_archive_messages_message_ref"),
    )
    op.create_index("ix_archive_messages_received_at", "archive_messages", ["received_at"])
    op.create_index("ix_archive_messages_blob", "archive_messages", ["blob"])

    op.create_table(
        "archive_indicators",
        pk(), sa.Column("archive_id", big_id, nullable=False), text("kind"), text("value"),
        sa.PrimaryKeyConstraint("id", name="pk_archive_indicators"),
        sa.ForeignKeyConstraint(["archive_id"], ["archive_messages.id"], ondelete="CASCADE",
                                name="fk_archive_indicators_archive_id_archive_messages"),
    )
    op.create_index("ix_archive_indicators_archive_id", "archive_indicators", ["archive_id"])
    op.create_index("ix_archive_indicators_kind_value", "archive_indicators", ["kind", "value"])

    op.create_table(
        "archive_removals",
        pk(), sa.Column("time", time, nullable=False), text("who"), sa.Column("query", json, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False), sa.Column("message_refs", json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_archive_removals"),
    )
    op.create_index("ix_archive_removals_time", "archive_removals", ["time"])

    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("user_email", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("user_email")
    for table in ("archive_removals", "archive_indicators", "archive_messages"):
        op.drop_table(table)
