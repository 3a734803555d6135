"""The gateway's report address and its scheduled posture check, with a real SMTP client (smtplib) against
the gateway fixtures of ``tests/gateway/conftest.py`` (real Knot DNS, a real downstream SMTP server; made
available here by this directory's conftest) on SQLite and PostgreSQL.

Mail for ``[dmarc] report_addresses`` is ingested instead of relayed (other recipients of the same message
still get it), a message without a report is accepted and kept aside with its error, a store that cannot
keep it answers 451 so the sender retries, and ``serve`` runs the posture check of own and partner domains.
"""

from __future__ import annotations

import email.policy
import gzip
import json
import time
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import reportgen
from gwharness import OWN, GatewayFactory, Recorder, RunningGateway, org_config
from gwmail import RCPT, clean, client, send
from sqlalchemy import func, select

from mailwarden.config import load_org
from mailwarden.dmarc.alerts import table
from mailwarden.dmarc.mailbox import KEPT_ASIDE_EVENT
from mailwarden.dmarc.schedule import PARTNER_EVENT, POSTURE_EVENT, RUN_EVENT
from mailwarden.dmarc.settings import ServeSettings, default_settings
from mailwarden.errors import ConfigError

REPORTS = f"dmarc-reports@{OWN}"


def org_with(**serve: Any) -> Any:
    dmarc = replace(default_settings(), serve=ServeSettings(**{"report_addresses": (REPORTS,), **serve}))
    return replace(org_config(), dmarc=dmarc)


def report_mail(xml: bytes, to: str = REPORTS, subject: str = f"Report domain: {OWN} Submitter: google.com") -> bytes:
    message = EmailMessage()
    message["From"] = "noreply-dmarc-support@google.com"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = "<report-1@google.com>"
    message["Date"] = "Mon, 02 Mar 2026 10:00:00 +0000"
    message.set_content("This is an aggregate report from google.com.")
    message.add_attachment(gzip.compress(xml), maintype="application", subtype="gzip",
                           filename=f"google.com!{OWN}!1780000000!1780086399.xml.gz")
    return message.as_bytes(policy=email.policy.SMTP)


def rows(gateway: RunningGateway, name: str) -> list[Any]:
    with gateway.engine.connect() as connection:
        return list(connection.execute(select(table(name)).order_by(table(name).c.id)))


def events(gateway: RunningGateway, kind: str) -> list[dict[str, Any]]:
    events_table = table("events")
    with gateway.engine.connect() as connection:
        return [row.payload for row in connection.execute(select(events_table).where(events_table.c.type == kind)
                                                          .order_by(events_table.c.id))]


def spool_files(gateway: RunningGateway) -> list[str]:
    return gateway.gateway.spool.refs()


def test_report_mail_is_ingested_not_relayed_and_once(start_gateway: GatewayFactory, downstream: Recorder) -> None:
    gateway = start_gateway(org_with())
    raw = report_mail(reportgen.aggregate_xml(12, seed=3, domain=OWN, report_id="gw-1"))
    code, reply = send(gateway.smtp_port, "bounces@google.com", raw, (REPORTS,))
    assert code == 250 and b"queued as" in reply
    [report] = rows(gateway, "dmarc_reports")
    assert (report.org_name, report.report_id, report.domain, report.record_count) == ("google.com", "gw-1", OWN, 12)
    assert report.source.startswith("smtp://127.0.0.1/")
    assert spool_files(gateway) == []  # stored, so the spool copy is gone
    code, _ = send(gateway.smtp_port, "bounces@google.com", raw, (REPORTS.upper(),))  # the sender retried
    assert code == 250 and len(rows(gateway, "dmarc_reports")) == 1
    assert [e["report_type"] for e in events(gateway, "dmarc.report")] == ["aggregate"]
    time.sleep(0.3)
    assert downstream.messages == []  # nothing was relayed
    with gateway.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(table("gateway_queue"))) == 0


def test_other_recipients_of_the_same_message_still_get_it(start_gateway: GatewayFactory,
                                                           downstream: Recorder) -> None:
    gateway = start_gateway(org_with())
    raw = report_mail(reportgen.aggregate_xml(3, seed=4, domain=OWN, report_id="gw-2"), to=f"{REPORTS}, {RCPT}")
    code, _ = send(gateway.smtp_port, "bounces@google.com", raw, (REPORTS, RCPT))
    assert code == 250
    [delivered] = downstream.wait_for(1)
    assert delivered.recipients == [RCPT]
    assert len(rows(gateway, "dmarc_reports")) == 1
    [scanned] = events(gateway, "message.scanned")
    assert scanned["recipients"] == [RCPT]


def test_a_message_without_a_report_is_accepted_and_kept_aside(start_gateway: GatewayFactory,
                                                               downstream: Recorder, tmp_path: Path) -> None:
    gateway = start_gateway(org_with())
    code, _ = send(gateway.smtp_port, "someone@good.gw.test", clean(), (REPORTS,))
    assert code == 250
    bad = report_mail(b"<?xml version='1.0'?><feedback><report_metadata>", subject="broken report")
    code, _ = send(gateway.smtp_port, "bounces@google.com", bad, (REPORTS,))
    assert code == 250
    invalid = tmp_path / "data" / "dmarc" / "invalid"
    notes = sorted(invalid.glob("*.error.json"))
    assert len(notes) == 2
    errors = [json.loads(n.read_text())["errors"][0]["error"] for n in notes]
    assert any(e.startswith("no report in this email") for e in errors)
    assert any("invalid XML" in e for e in errors)
    kept = [n.with_name(n.name.removesuffix(".error.json")) for n in notes]
    assert sorted(p.read_bytes() for p in kept) == sorted([clean(), bad])  # the whole message, byte for byte
    assert [len(e["errors"]) for e in events(gateway, KEPT_ASIDE_EVENT)] == [1, 1]
    assert rows(gateway, "dmarc_reports") == [] and spool_files(gateway) == []
    time.sleep(0.3)
    assert downstream.messages == []


def test_when_nothing_can_be_kept_the_sender_is_told_to_retry(start_gateway: GatewayFactory,
                                                              downstream: Recorder, tmp_path: Path) -> None:
    gateway = start_gateway(org_with())
    (tmp_path / "data" / "dmarc").write_text("not a directory")  # the invalid/ folder cannot be made
    code, reply = send(gateway.smtp_port, "someone@good.gw.test", clean(), (REPORTS,))
    assert code == 451, reply
    assert spool_files(gateway) == []  # nothing kept: the sender has it and retries
    with client(gateway.smtp_port) as smtp:  # the session goes on
        assert smtp.noop()[0] == 250


def test_a_report_address_outside_the_own_domains_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "org.toml"
    config.write_text('[organization]\ndomains = ["acme.example"]\n[dmarc]\n'
                      'report_addresses = ["dmarc@reports.other.example"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="not in the organisation's domains"):
        load_org(config)
    config.write_text('[organization]\ndomains = ["acme.example"]\n[dmarc]\n'
                      'report_addresses = ["DMARC@Reports.Acme.Example"]\nposture_interval = "12h"\n'
                      'notify_partners = true\n', encoding="utf-8")
    org = load_org(config)
    assert org.dmarc.serve == ServeSettings(("dmarc@reports.acme.example",), 43_200.0, True)
    for bad in ('posture_interval = "soon"', "posture_interval = 0", 'notify_partners = "yes"',
                'report_addresses = ["not-an-address"]'):
        config.write_text(f'[organization]\ndomains = ["acme.example"]\n[dmarc]\n{bad}\n', encoding="utf-8")
        with pytest.raises(ConfigError):
            load_org(config)


def test_serve_checks_the_posture_of_own_and_partner_domains(start_gateway: GatewayFactory,
                                                             downstream: Recorder) -> None:
    gateway = start_gateway(org_with(posture_interval=1.0))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(events(gateway, RUN_EVENT)) < 2:
        time.sleep(0.1)
    runs = events(gateway, RUN_EVENT)
    assert len(runs) >= 2 and runs[0]["checked"] == 2
    postures = events(gateway, POSTURE_EVENT)
    assert sorted(p["domain"] for p in postures) == [OWN, "globex.gw.test"]  # stored once: nothing changed since
    assert all(run["changed"] == [] for run in runs[1:])
    [partner] = events(gateway, PARTNER_EVENT)
    assert (partner["domain"], partner["partner"], partner["flag"], partner["strength"]) == (
        "globex.gw.test", "Globex Logistics", "weak_dmarc", "quarantine")
    assert gateway.gateway.posture is not None and gateway.gateway.posture.runs >= 2
