"""End to end through ``serve``: a posted indicator blocks the next message carrying it at SMTP time, without a
restart; the retro-hunt returns (and with remediate removes) the earlier, archived ones; a quarantine verdict
becomes indicators with sightings. Real DNS (Knot), a real downstream SMTP server, the gateway's own API."""

from __future__ import annotations

import os
import smtplib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gateway"))

from auth.dnsserver import KnotServer, free_port, knotd_path
from gwharness import Downstream, Recorder, RunningGateway, gateway_settings, org_config, zone_records
from gwmail import build, client, quarantined

from mailwarden.api.keys import create_key
from mailwarden.dns import LiveResolver
from mailwarden.gateway import archive, quarantine
from mailwarden.gateway.server import Gateway
from mailwarden.intel import store
from mailwarden.intel.settings import IntelSettings
from mailwarden.profiles import Profiles

LINK = "http://pay.evil-invoices.example/inv?id=42"


@pytest.fixture(scope="module")
def resolver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveResolver]:
    if knotd_path() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("knotd is required in CI (scripts/test installs the knot package)")
        pytest.skip("knotd not installed (apt-get install knot)")
    with KnotServer(tmp_path_factory.mktemp("intel-knot"), {"gw.test": zone_records()}) as server, \
            LiveResolver(server.address, timeout=1.0) as live:
        yield live


@pytest.fixture
def running(tmp_path: Path, database_url: str, resolver: LiveResolver,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RunningGateway, Recorder]]:
    monkeypatch.delenv("MAILWARDEN_RESOLVER", raising=False)
    port = free_port()
    recorder = Recorder()
    downstream = Downstream(recorder, hostname="127.0.0.1", port=port, server_hostname="next-hop.test")
    downstream.start()
    gateway = Gateway(settings=gateway_settings(port), org=org_config(), data_dir=tmp_path / "data",
                      database_url=database_url, resolver=resolver, profiles=Profiles(),
                      intel=IntelSettings(reload_interval=0.1, publish_interval=0.2, api_rate=1000, api_burst=1000))
    started = RunningGateway(gateway).start()
    try:
        yield started, recorder
    finally:
        if started.thread.is_alive():
            started.stop()
        downstream.stop()


def invoice(message_id: str) -> bytes:
    return build("Alice <alice@good.gw.test>", "Invoice 42", "Please find the invoice at the link below.",
                 html=f'<p>Please find the invoice <a href="{LINK}">here</a>.</p>', message_id=message_id)


def send(port: int, raw: bytes) -> None:
    with client(port) as smtp:
        smtp.sendmail("alice@good.gw.test", ["bob@acme.gw.test"], raw)


def api(gateway: RunningGateway) -> tuple[httpx.Client, dict[str, str]]:
    token = create_key(gateway.engine, name="soar", scopes=["intel:read", "intel:write"],
                       now=gateway.gateway.clock())
    return httpx.Client(base_url=f"http://127.0.0.1:{gateway.http_port}"), {"Authorization": f"Bearer {token}"}


def test_a_posted_block_refuses_the_next_message_and_hunts_the_earlier_ones(
        running: tuple[RunningGateway, Recorder]) -> None:
    gateway, recorder = running
    send(gateway.smtp_port, invoice("<first@good.gw.test>"))
    send(gateway.smtp_port, invoice("<second@good.gw.test>"))
    recorder.wait_for(2)
    http, auth = api(gateway)
    with http:
        posted = http.post("/api/v1/indicators", headers=auth, json={
            "type": "domain", "value": "evil-invoices.example", "confidence": 90, "action": "block",
            "valid_until": "2099-01-01T00:00:00Z"})
        assert posted.status_code == 201, posted.text
        hunt = posted.json()["retrohunt"]
        assert sorted(m["message_id"] for m in hunt["matches"]) == ["<first@good.gw.test>", "<second@good.gw.test>"]
        assert hunt["actions"] == []  # found, not removed
        deadline = time.monotonic() + 10
        while gateway.gateway.receiver.context.intel.blocked_domains != {"evil-invoices.example"}:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the gateway did not reload its block lists"
            time.sleep(0.05)
        try:  # the block's weight decides: refused at SMTP time (550) or held in quarantine, never delivered
            send(gateway.smtp_port, invoice("<third@good.gw.test>"))
            outcome = "quarantine"
        except smtplib.SMTPDataError as refused:
            assert refused.smtp_code == 550 and b"intel.blocked_domain" in refused.smtp_error
            outcome = "reject"
        if outcome == "quarantine":
            held = quarantine.list_held(gateway.engine).items
            assert [h["message_id"] for h in held] == ["<third@good.gw.test>"]
            assert any(s["id"] == "intel.blocked_domain" for s in held[0]["signals"])
        indicator_id = posted.json()["indicator"]["id"]
        remediated = http.post(f"/api/v1/indicators/{indicator_id}/retrohunt?remediate=true", headers=auth).json()
        archived = [m for m in remediated["matches"] if m["where"] == "archive"]
        assert len(archived) == (2 if outcome == "reject" else 3)
        assert {"removed_from_archive", "mailbox_removal_pending"} <= {a["action"] for a in remediated["actions"]}
        third = [m for m in remediated["matches"] if m["message_id"] == "<third@good.gw.test>"]
        assert [m["where"] for m in third] == ["rejected" if outcome == "reject" else "archive"]
        assert archive.search(gateway.engine, archive.ArchiveQuery(domain="evil-invoices.example")).items == []
        revoked = http.post(f"/api/v1/indicators/{indicator_id}/revoke", headers=auth)
        assert revoked.status_code == 200
        deadline = time.monotonic() + 10
        while gateway.gateway.receiver.context.intel.blocked_domains:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the revocation did not reach the gateway"
            time.sleep(0.05)
    send(gateway.smtp_port, invoice("<fourth@good.gw.test>"))
    recorder.wait_for(3)


def test_a_quarantine_verdict_becomes_indicators_with_sightings(running: tuple[RunningGateway, Recorder]) -> None:
    gateway, _ = running
    with client(gateway.smtp_port) as smtp:
        smtp.sendmail("info@promo.gw.test", ["bob@acme.gw.test"], quarantined())
    found: dict[str, Any] = {}
    deadline = time.monotonic() + 10
    while "info@promo.gw.test" not in found:
        assert time.monotonic() < deadline
        found = {i["value"]: i for i in store.search(gateway.engine).items}
        time.sleep(0.05)
    sender = found["info@promo.gw.test"]
    assert sender["source"] == "gateway" and sender["sightings"] == 1 and sender["action"] == "monitor"
    assert "verdict:quarantine" in sender["tags"]
    [sighting] = store.sightings_of(gateway.engine, sender["id"]).items
    assert sighting["message_id"] == "<q1@promo.gw.test>" and sighting["verdict"] == "quarantine"
