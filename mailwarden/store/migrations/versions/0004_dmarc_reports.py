"""DMARC reports: aggregate reports and records, failure and SMTP TLS reports, alerts, indicators.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(JSONB(), "postgresql")
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    time = sa.DateTime(timezone=True)

    def pk() -> sa.Column[int]:
        return sa.Column("id", big_id, nullable=False, autoincrement=True)

    def text(name: str, nullable: bool = False, default: str | None = None) -> sa.Column[str]:
        return sa.Column(name, sa.Text(), nullable=nullable, server_default=default)

    def boolean(name: str) -> sa.Column[bool]:
        return sa.Column(name, sa.Boolean(), nullable=False)

    op.create_table(
        "dmarc_reports",
        pk(), text("org_name"), text("report_id"), text("domain"), text("org_email", nullable=True),
        sa.Column("begin_date", time, nullable=False), sa.Column("end_date", time, nullable=False),
        text("xml_schema", nullable=True), sa.Column("policy", json, nullable=False),
        sa.Column("errors", json, nullable=False), sa.Column("warnings", json, nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("message_count", sa.BigInteger(), nullable=False), text("source", default=""),
        sa.Column("received_at", time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dmarc_reports"),
        sa.UniqueConstraint("org_name", "report_id", "domain", name="uq_dmarc_reports_org_name_report_id_domain"),
    )
    op.create_index("ix_dmarc_reports_domain", "dmarc_reports", ["domain"])
    op.create_index("ix_dmarc_reports_begin_date", "dmarc_reports", ["begin_date"])

    op.create_table(
        "dmarc_records",
        pk(), sa.Column("report", big_id, nullable=False), text("source_ip"), text("network"),
        sa.Column("count", sa.BigInteger(), nullable=False), text("disposition", nullable=True),
        text("policy_dkim", nullable=True), text("policy_spf", nullable=True), boolean("dkim_aligned"),
        boolean("spf_aligned"), boolean("dmarc_pass"), boolean("dkim_pass"), boolean("spf_pass"), text("header_from"),
        text("envelope_from", nullable=True), text("envelope_to", nullable=True),
        sa.Column("dkim_results", json, nullable=False), sa.Column("spf_results", json, nullable=False),
        sa.Column("reasons", json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dmarc_records"),
        sa.ForeignKeyConstraint(["report"], ["dmarc_reports.id"], name="fk_dmarc_records_report_dmarc_reports",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_dmarc_records_report", "dmarc_records", ["report"])
    op.create_index("ix_dmarc_records_source_ip", "dmarc_records", ["source_ip"])
    op.create_index("ix_dmarc_records_network", "dmarc_records", ["network"])
    op.create_index("ix_dmarc_records_header_from_source_ip", "dmarc_records", ["header_from", "source_ip"])

    op.create_table(
        "dmarc_failure_reports",
        pk(), text("digest"), text("reported_domain"), text("source_ip"), sa.Column("arrival", time, nullable=False),
        text("original_mail_from", nullable=True), sa.Column("auth_failure", json, nullable=False),
        sa.Column("report", json, nullable=False), text("source", default=""),
        sa.Column("received_at", time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dmarc_failure_reports"),
        sa.UniqueConstraint("digest", name="uq_dmarc_failure_reports_digest"),
    )
    op.create_index("ix_dmarc_failure_reports_reported_domain", "dmarc_failure_reports", ["reported_domain"])
    op.create_index("ix_dmarc_failure_reports_source_ip", "dmarc_failure_reports", ["source_ip"])
    op.create_index("ix_dmarc_failure_reports_arrival", "dmarc_failure_reports", ["arrival"])

    op.create_table(
        "dmarc_tls_reports",
        pk(), text("organization_name"), text("report_id"), text("begin_date"), text("end_date"),
        sa.Column("successful_sessions", sa.BigInteger(), nullable=False),
        sa.Column("failed_sessions", sa.BigInteger(), nullable=False), sa.Column("policies", json, nullable=False),
        text("source", default=""), sa.Column("received_at", time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dmarc_tls_reports"),
        sa.UniqueConstraint("organization_name", "report_id", name="uq_dmarc_tls_reports_organization_name_report_id"),
    )

    op.create_table(
        "dmarc_alerts",
        pk(), text("kind"), text("key"), text("domain"), text("source_ip", nullable=True), text("detail"),
        sa.Column("data", json, nullable=False), sa.Column("created_at", time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dmarc_alerts"),
        sa.UniqueConstraint("kind", "key", name="uq_dmarc_alerts_kind_key"),
    )
    op.create_index("ix_dmarc_alerts_kind", "dmarc_alerts", ["kind"])
    op.create_index("ix_dmarc_alerts_domain", "dmarc_alerts", ["domain"])
    op.create_index("ix_dmarc_alerts_created_at", "dmarc_alerts", ["created_at"])

    op.create_table(
        "dmarc_indicators",
        pk(), text("kind"), text("value"), text("spoofed_domain"), text("source"),
        sa.Column("confidence", sa.Integer(), nullable=False), sa.Column("sightings", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", time, nullable=False), sa.Column("last_seen", time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dmarc_indicators"),
        sa.UniqueConstraint("kind", "value", "spoofed_domain", name="uq_dmarc_indicators_kind_value_spoofed_domain"),
    )
    op.create_index("ix_dmarc_indicators_value", "dmarc_indicators", ["value"])


def downgrade() -> None:
    for table in ("dmarc_indicators", "dmarc_alerts", "dmarc_tls_reports", "dmarc_failure_reports", "dmarc_records",
                  "dmarc_reports"):
        op.drop_table(table)
