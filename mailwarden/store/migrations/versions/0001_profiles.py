"""Per-sender and per-domain profiles learned from past mail.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

SET_COLUMNS = ("display_names", "sending_domains", "dkim_domains", "spf_domains", "reply_to_domains",
               "ips", "mailers", "recipients")


def upgrade() -> None:
    json_list = sa.JSON().with_variant(JSONB(), "postgresql")
    op.create_table(
        "profiles",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False,
                  autoincrement=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False, server_default="0"),
        *(sa.Column(name, json_list, nullable=False, server_default="[]") for name in SET_COLUMNS),
        sa.PrimaryKeyConstraint("id", name="pk_profiles"),
        sa.UniqueConstraint("kind", "key", name="uq_profiles_kind_key"),
        sa.CheckConstraint("kind IN ('sender', 'domain')", name="ck_profiles_kind"),
    )


def downgrade() -> None:
    op.drop_table("profiles")
