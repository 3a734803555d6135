"""Profiles also learn payment identifiers, thread ids, link domains, sending networks and Message-ID styles.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

NEW_COLUMNS = ("payment_ids", "thread_ids", "link_domains", "networks", "message_id_styles")


def upgrade() -> None:
    json_list = sa.JSON().with_variant(JSONB(), "postgresql")
    with op.batch_alter_table("profiles") as batch:
        for name in NEW_COLUMNS:
            batch.add_column(sa.Column(name, json_list, nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("profiles") as batch:
        for name in reversed(NEW_COLUMNS):
            batch.drop_column(name)
