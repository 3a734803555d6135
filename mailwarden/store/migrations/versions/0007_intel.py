"""Threat-intel sharing: the indicator store, sightings, STIX versions for TAXII, audit log, sink state, hunts.

The lookalike watch's indicators (``lookalike_indicators``, migration 0005) are copied into the store, tagged
and sourced as they were; from now on the watch writes to both.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def _stable_uuid(*parts: str) -> str:
    digest = bytearray(hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x40
    digest[8] = (digest[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(digest)))


def upgrade() -> None:
    json = sa.JSON().with_variant(JSONB(), "postgresql")
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    time = sa.DateTime(timezone=True)

    def pk() -> sa.Column[int]:
        return sa.Column("id", big_id, nullable=False, autoincrement=True)

    def text(name: str, default: str | None = None) -> sa.Column[str]:
        return sa.Column(name, sa.Text(), nullable=False, server_default=default)

    def when(name: str, nullable: bool = False) -> sa.Column[Any]:
        return sa.Column(name, time, nullable=nullable)

    def number(name: str, default: str | None = None) -> sa.Column[int]:
        return sa.Column(name, sa.Integer(), nullable=False, server_default=default)

    indicators = op.create_table(
        "intel_indicators",
        pk(), text("stix_id"), text("type"), text("value"), number("confidence"), text("severity"), text("action"),
        text("source"), sa.Column("tags", json, nullable=False), text("description", ""), when("first_seen"),
        when("last_seen"), when("valid_from"), when("valid_until", True),
        sa.Column("revoked", sa.Boolean(), nullable=False, server_default=sa.false()), when("revoked_at", True),
        text("revoked_reason", ""), number("sightings", "0"), when("created_at"), when("modified_at"),
        sa.PrimaryKeyConstraint("id", name="pk_intel_indicators"),
        sa.UniqueConstraint("type", "value", name="uq_intel_indicators_type_value"),
        sa.UniqueConstraint("stix_id", name="uq_intel_indicators_stix_id"),
        sa.CheckConstraint("type IN ('domain', 'url', 'ipv4', 'ipv6', 'email-addr', 'file-sha256')",
                           name="ck_intel_indicators_type"),
        sa.CheckConstraint("action IN ('block', 'monitor')", name="ck_intel_indicators_action"),
        sa.CheckConstraint("severity IN ('low', 'medium', 'high', 'critical')", name="ck_intel_indicators_severity"),
        sa.CheckConstraint("confidence >= 0 AND confidence <= 100", name="ck_intel_indicators_confidence"),
    )
    op.create_index("ix_intel_indicators_value", "intel_indicators", ["value"])
    op.create_index("ix_intel_indicators_source", "intel_indicators", ["source"])
    op.create_index("ix_intel_indicators_valid_until", "intel_indicators", ["valid_until"])
    op.create_index("ix_intel_indicators_modified_at", "intel_indicators", ["modified_at"])
    op.create_index("ix_intel_indicators_action_revoked", "intel_indicators", ["action", "revoked"])
    op.create_index("ix_intel_indicators_type_id", "intel_indicators", ["type", "id"])

    op.create_table(
        "intel_sightings",
        pk(), sa.Column("indicator_id", big_id, nullable=False), text("message_ref"), text("message_id", ""),
        when("seen_at"), text("source"), text("verdict", ""), text("detail", ""),
        sa.PrimaryKeyConstraint("id", name="pk_intel_sightings"),
        sa.ForeignKeyConstraint(["indicator_id"], ["intel_indicators.id"],
                                name="fk_intel_sightings_indicator_id_intel_indicators"),
        sa.UniqueConstraint("indicator_id", "message_ref", name="uq_intel_sightings_indicator_id_message_ref"),
    )
    op.create_index("ix_intel_sightings_message_ref", "intel_sightings", ["message_ref"])

    op.create_table(
        "intel_objects",
        pk(), text("stix_id"), text("type"), when("version"), when("date_added"),
        sa.Column("indicator_id", big_id, nullable=True),
        sa.Column("latest", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("object", json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_intel_objects"),
        sa.UniqueConstraint("stix_id", "version", name="uq_intel_objects_stix_id_version"),
    )
    for column in ("stix_id", "type", "indicator_id"):
        op.create_index(f"ix_intel_objects_{column}", "intel_objects", [column])
    op.create_index("ix_intel_objects_date_added_id", "intel_objects", ["date_added", "id"])

    op.create_table(
        "intel_audit",
        pk(), when("time"), text("actor"), text("action"), sa.Column("indicator_id", big_id, nullable=True),
        sa.Column("detail", json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_intel_audit"),
    )
    op.create_index("ix_intel_audit_time", "intel_audit", ["time"])
    op.create_index("ix_intel_audit_indicator_id", "intel_audit", ["indicator_id"])

    op.create_table(
        "intel_state",
        pk(), text("name"), sa.Column("number", big_id, nullable=False, server_default="0"), text("text", ""),
        when("changed_at"),
        sa.PrimaryKeyConstraint("id", name="pk_intel_state"),
        sa.UniqueConstraint("name", name="uq_intel_state_name"),
    )

    op.create_table(
        "intel_cursors",
        pk(), text("name"), sa.Column("position", json, nullable=False), when("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_intel_cursors"),
        sa.UniqueConstraint("name", name="uq_intel_cursors_name"),
    )

    op.create_table(
        "intel_deliveries",
        pk(), text("sink"), sa.Column("event_id", big_id, nullable=False), text("state"), number("attempts", "0"),
        when("next_attempt_at"), when("lease_until", True), sa.Column("last_status", sa.Integer(), nullable=True),
        text("last_error", ""), when("created_at"), when("updated_at"), when("delivered_at", True),
        sa.PrimaryKeyConstraint("id", name="pk_intel_deliveries"),
        sa.UniqueConstraint("sink", "event_id", name="uq_intel_deliveries_sink_event_id"),
        sa.CheckConstraint("state IN ('pending', 'delivering', 'delivered', 'dead')",
                           name="ck_intel_deliveries_state"),
    )
    op.create_index("ix_intel_deliveries_state_next_attempt_at", "intel_deliveries", ["state", "next_attempt_at"])

    op.create_table(
        "intel_hunts",
        pk(), sa.Column("indicator_id", big_id, nullable=False), when("started_at"), text("requested_by"),
        sa.Column("remediate", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("matches", json, nullable=False), sa.Column("actions", json, nullable=False),
        sa.Column("covered", json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_intel_hunts"),
        sa.ForeignKeyConstraint(["indicator_id"], ["intel_indicators.id"],
                                name="fk_intel_hunts_indicator_id_intel_indicators"),
    )
    op.create_index("ix_intel_hunts_indicator_id", "intel_hunts", ["indicator_id"])

    _copy_lookalike_indicators(indicators)


def _copy_lookalike_indicators(indicators: sa.Table) -> None:
    """The watch's indicators as store rows (one per domain: the most confident source wins)."""
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if "lookalike_indicators" not in inspector.get_table_names():
        return
    old = sa.table("lookalike_indicators", sa.column("type"), sa.column("value"), sa.column("confidence"),
                   sa.column("source"), sa.column("tags", sa.JSON()), sa.column("first_seen", sa.DateTime(True)),
                   sa.column("last_seen", sa.DateTime(True)), sa.column("sightings"))
    rows: dict[str, dict[str, object]] = {}
    for row in bind.execute(sa.select(old).order_by(old.c.confidence)):
        if row.type != "domain":
            continue
        value = str(row.value).lower().rstrip(".")
        confidence = max(0, min(100, int(row.confidence)))
        first, last = row.first_seen, row.last_seen
        tags = sorted({*(row.tags or []), f"source:{row.source}"})
        rows[value] = {
            "stix_id": f"indicator--{_stable_uuid('indicator', 'domain', value)}", "type": "domain", "value": value,
            "confidence": confidence, "severity": "high" if confidence >= 80 else "medium" if confidence >= 50
            else "low", "action": "monitor", "source": row.source, "tags": tags, "description": "",
            "first_seen": first, "last_seen": last, "valid_from": first, "valid_until": last + timedelta(days=90),
            "revoked": False, "revoked_reason": "", "sightings": 0, "created_at": first, "modified_at": last,
        }
    if rows:
        op.bulk_insert(indicators, list(rows.values()))


def downgrade() -> None:
    for table in ("intel_hunts", "intel_deliveries", "intel_cursors", "intel_state", "intel_audit", "intel_objects",
                  "intel_sightings", "intel_indicators"):
        op.drop_table(table)
