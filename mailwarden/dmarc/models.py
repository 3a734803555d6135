"""The DMARC tables, on the shared ``Base`` (``store/models.py`` imports this module); migration 0004.

    dmarc_reports          one aggregate report: reporter, report id, domain (unique together), period,
                           the policy published, totals
    dmarc_records          its records, normalised: source IP and network, count, evaluated results,
                           alignment, raw SPF/DKIM results, identifiers
    dmarc_failure_reports  failure (forensic) reports, unique by the digest of their content
    dmarc_tls_reports      SMTP TLS reports: reporter and report id unique, policies with their counts
    dmarc_alerts           new unauthorised senders, failure jumps, spoof evidence (unique by kind and key);
                           each new one also goes to the ``events`` outbox
    dmarc_indicators       spoofing IPs and domains learned from reports, for sharing
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from mailwarden.store.models import Base, UTCDateTime, big_id


def json_doc() -> TypeEngine[Any]:
    return JSON().with_variant(JSONB(), "postgresql")


class DmarcReportRow(Base):
    __tablename__ = "dmarc_reports"
    __table_args__ = (UniqueConstraint("org_name", "report_id", "domain"),)

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    org_name: Mapped[str] = mapped_column(Text)
    report_id: Mapped[str] = mapped_column(Text)
    domain: Mapped[str] = mapped_column(Text, index=True)  # policy_published.domain, lower case
    org_email: Mapped[str | None] = mapped_column(Text, nullable=True)
    begin_date: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    end_date: Mapped[datetime] = mapped_column(UTCDateTime)
    xml_schema: Mapped[str | None] = mapped_column(Text, nullable=True)
    policy: Mapped[Any] = mapped_column(json_doc())  # policy_published as parsedmarc names it
    errors: Mapped[Any] = mapped_column(json_doc())
    warnings: Mapped[Any] = mapped_column(json_doc())
    record_count: Mapped[int] = mapped_column(Integer)
    message_count: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(Text, server_default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DmarcRecordRow(Base):
    __tablename__ = "dmarc_records"
    __table_args__ = (Index("ix_dmarc_records_header_from_source_ip", "header_from", "source_ip"),)

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    report: Mapped[int] = mapped_column(big_id(), ForeignKey("dmarc_reports.id", ondelete="CASCADE"), index=True)
    source_ip: Mapped[str] = mapped_column(Text, index=True)  # compressed form (2001:db8::1)
    network: Mapped[str] = mapped_column(Text, index=True)  # the /24 (IPv4) or /64 (IPv6) it is in
    count: Mapped[int] = mapped_column(BigInteger)
    disposition: Mapped[str | None] = mapped_column(Text, nullable=True)
    policy_dkim: Mapped[str | None] = mapped_column(Text, nullable=True)
    policy_spf: Mapped[str | None] = mapped_column(Text, nullable=True)
    dkim_aligned: Mapped[bool] = mapped_column(Boolean)
    spf_aligned: Mapped[bool] = mapped_column(Boolean)
    dmarc_pass: Mapped[bool] = mapped_column(Boolean)
    dkim_pass: Mapped[bool] = mapped_column(Boolean)  # any DKIM signature verified (raw result)
    spf_pass: Mapped[bool] = mapped_column(Boolean)  # the raw SPF result
    header_from: Mapped[str] = mapped_column(Text)
    envelope_from: Mapped[str | None] = mapped_column(Text, nullable=True)
    envelope_to: Mapped[str | None] = mapped_column(Text, nullable=True)
    dkim_results: Mapped[Any] = mapped_column(json_doc())
    spf_results: Mapped[Any] = mapped_column(json_doc())
    reasons: Mapped[Any] = mapped_column(json_doc())


class DmarcFailureReportRow(Base):
    __tablename__ = "dmarc_failure_reports"

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(Text, unique=True)  # sha256 of the feedback fields and the sample
    reported_domain: Mapped[str] = mapped_column(Text, index=True)
    source_ip: Mapped[str] = mapped_column(Text, index=True)
    arrival: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    original_mail_from: Mapped[str | None] = mapped_column(Text, nullable=True)
    auth_failure: Mapped[Any] = mapped_column(json_doc())
    report: Mapped[Any] = mapped_column(json_doc())  # the parsed report (parsedmarc's names), sample included
    source: Mapped[str] = mapped_column(Text, server_default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DmarcTlsReportRow(Base):
    __tablename__ = "dmarc_tls_reports"
    __table_args__ = (UniqueConstraint("organization_name", "report_id"),)

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    organization_name: Mapped[str] = mapped_column(Text)
    report_id: Mapped[str] = mapped_column(Text)
    begin_date: Mapped[str] = mapped_column(Text)
    end_date: Mapped[str] = mapped_column(Text)
    successful_sessions: Mapped[int] = mapped_column(BigInteger)
    failed_sessions: Mapped[int] = mapped_column(BigInteger)
    policies: Mapped[Any] = mapped_column(json_doc())
    source: Mapped[str] = mapped_column(Text, server_default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DmarcAlertRow(Base):
    __tablename__ = "dmarc_alerts"
    __table_args__ = (UniqueConstraint("kind", "key"),)

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(Text, index=True)
    key: Mapped[str] = mapped_column(Text)
    domain: Mapped[str] = mapped_column(Text, index=True)
    source_ip: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[str] = mapped_column(Text)
    data: Mapped[Any] = mapped_column(json_doc())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class DmarcIndicatorRow(Base):
    __tablename__ = "dmarc_indicators"
    __table_args__ = (UniqueConstraint("kind", "value", "spoofed_domain"),)

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(Text)  # ip | domain
    value: Mapped[str] = mapped_column(Text, index=True)
    spoofed_domain: Mapped[str] = mapped_column(Text)  # the own domain it sent as
    source: Mapped[str] = mapped_column(Text)  # dmarc-aggregate | dmarc-failure
    confidence: Mapped[int] = mapped_column(Integer)  # 0-100
    sightings: Mapped[int] = mapped_column(BigInteger)  # messages seen
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
