"""Push: signed webhooks with retries, dead letters and replay (a receiver that checks every signature); syslog
to a real rsyslog over TCP and TLS, CEF and JSON."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from intelharness import NOW, ORG, Rsyslog, build_app, webhook_receiver
from sqlalchemy import Engine

from mailwarden.api.keys import create_key
from mailwarden.gateway import events
from mailwarden.gateway.server import open_engine
from mailwarden.intel import outbox, store
from mailwarden.intel.service import IntelService
from mailwarden.intel.settings import IntelSettings, SyslogSettings, WebhookSettings
from mailwarden.intel.syslog import cef, frame, message
from mailwarden.intel.webhooks import sign, verify
from mailwarden.pipeline import Context

SECRET = "s3cret-for-tests"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    found = open_engine(database_url)
    yield found
    found.dispose()


def later() -> datetime:
    return datetime.now(UTC) + outbox.GRACE + timedelta(seconds=1)  # past the outbox's grace time


def add_indicator(engine: Engine, value: str, action: str = "block") -> None:
    with engine.begin() as connection:
        store.record(connection, store.NewIndicator("domain", value, confidence=90, action=action),
                     now=datetime.now(UTC), actor="test")


def publish(service: IntelService) -> dict[str, object]:
    return asyncio.run(service.publish_once())


def test_signatures_cover_timestamp_and_body() -> None:
    body = b'{"a":1}'
    signature = sign(b"k", 1700000000, body)
    assert verify(b"k", "1700000000", body, signature, now=1700000100)
    assert not verify(b"k", "1700000000", body + b" ", signature, now=1700000100)
    assert not verify(b"k", "1700000001", body, signature, now=1700000100)
    assert not verify(b"k", "1700000000", body, signature, now=1700009999)  # too old
    assert not verify(b"other", "1700000000", body, signature, now=1700000100)


def test_webhooks_retry_after_500_then_deliver_signed(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MW_HOOK_SECRET", SECRET)
    with webhook_receiver(SECRET.encode()) as receiver:
        hook = WebhookSettings("soar", receiver.url, "MW_HOOK_SECRET", events=("indicator.upserted",),
                               max_attempts=5, retry_base=0.05, retry_max=0.2, timeout=5)
        service = IntelService(engine, ORG, IntelSettings(webhooks=(hook,)), Context(), clock=later)
        publish(service)  # a new webhook starts at the newest event: what came before is not sent
        add_indicator(engine, "evil.example")
        with engine.begin() as connection:
            events.add_event(connection, "message.scanned", {"x": 1}, datetime.now(UTC))  # not subscribed
        receiver.statuses = [500, 500]
        publish(service)
        for _ in range(40):
            if any(r.headers.get("x-mailwarden-event") and r.valid for r in receiver.requests[2:]):
                break
            asyncio.run(asyncio.sleep(0.1))
            publish(service)
        assert [r.valid for r in receiver.requests] == [True, True, True]
        deliveries = {r.headers["x-mailwarden-delivery"] for r in receiver.requests}
        assert len(deliveries) == 1  # the same delivery, retried
        [event] = {json.dumps(e, sort_keys=True) for e in receiver.events()}
        body = json.loads(event)
        assert body["type"] == "indicator.upserted" and body["data"]["indicator"]["value"] == "evil.example"
        [row] = outbox.list_deliveries(engine).items
        assert row["state"] == "delivered" and row["attempts"] == 3 and row["last_status"] == 204


def test_dead_letters_and_replay(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MW_HOOK_SECRET", SECRET)
    with webhook_receiver(SECRET.encode()) as receiver:
        hook = WebhookSettings("siem", receiver.url, "MW_HOOK_SECRET", max_attempts=2, retry_base=0.01,
                               retry_max=0.01, timeout=5)
        service = IntelService(engine, ORG, IntelSettings(webhooks=(hook,)), Context(), clock=later)
        publish(service)
        add_indicator(engine, "dead.example")
        receiver.statuses = [503] * 10
        for _ in range(20):
            publish(service)
            if outbox.list_deliveries(engine, state="dead").items:
                break
            asyncio.run(asyncio.sleep(0.05))
        [dead] = outbox.list_deliveries(engine, state="dead").items
        assert dead["attempts"] == 2 and dead["last_error"] == "HTTP 503"
        receiver.statuses = []
        token = create_key(engine, name="ops", scopes=["intel:read", "intel:write"], now=NOW)
        app, _, _ = build_app(engine, tmp_path / "data")
        with TestClient(app) as client:
            auth = {"Authorization": f"Bearer {token}"}
            listed = client.get("/api/v1/webhooks/deliveries?state=dead", headers=auth).json()["items"]
            assert [d["id"] for d in listed] == [dead["id"]]
            replayed = client.post(f"/api/v1/webhooks/deliveries/{dead['id']}/replay", headers=auth)
            assert replayed.json() == {"replayed": [dead["id"]]}
            assert client.post("/api/v1/webhooks/deliveries/999/replay", headers=auth).status_code == 404
        publish(service)
        assert outbox.list_deliveries(engine, state="delivered").items[0]["id"] == dead["id"]
        assert receiver.requests[-1].valid
        count = outbox.replay_events(engine, hook, since_event=0, now=datetime.now(UTC))
        assert count >= 1 and outbox.list_deliveries(engine, state="pending").items


def test_syslog_to_rsyslog_over_tcp_and_tls_in_cef_and_json(engine: Engine, rsyslog: Rsyslog) -> None:
    before = len(rsyslog.lines())
    plain = SyslogSettings("siem-tcp", f"127.0.0.1:{rsyslog.tcp_port}", transport="tcp", format="cef",
                           hostname="mx1.acme.test")
    secure = SyslogSettings("siem-tls", f"127.0.0.1:{rsyslog.tls_port}", transport="tls", format="json",
                            ca_file=str(rsyslog.ca_file), hostname="mx1.acme.test")
    service = IntelService(engine, ORG, IntelSettings(syslog=(plain, secure)), Context(), clock=later)
    publish(service)
    add_indicator(engine, "syslog-evil.example")
    with engine.begin() as connection:
        events.add_event(connection, events.THREAT_DETECTED, {
            "ref": "r1", "client_ip": "203.0.113.5", "header_from": "ceo@evil.example", "verdict": "reject",
            "score": 95, "recipients": ["bob@acme.test"], "signals": ["intel.blocked_domain"], "action": "reject",
            "message_id": "<x|y=z@evil.example>"}, datetime.now(UTC))
    done = publish(service)
    assert done["syslog:siem-tcp"] == 2 and done["syslog:siem-tls"] == 2
    lines = rsyslog.wait_for(before + 4)[before:]
    cef_lines = [line for line in lines if "CEF:0|" in line]
    json_lines = [line for line in lines if "|{" in line]
    assert len(cef_lines) == 2 and len(json_lines) == 2
    indicator_line = next(line for line in cef_lines if line.startswith("indicator.upserted|"))
    assert "|mailwarden|" in indicator_line and 'software="Mailwarden"' in indicator_line
    assert "dhost=syslog-evil.example" in indicator_line and "act=block" in indicator_line
    threat_line = next(line for line in cef_lines if line.startswith("threat.detected|"))
    assert "src=203.0.113.5" in threat_line and "cs5=<x|y\\=z@evil.example>" in threat_line
    payloads = [json.loads(line.split("|", 3)[3]) for line in json_lines]
    assert {p["type"] for p in payloads} == {"indicator.upserted", "threat.detected"}
    assert publish(service)["syslog:siem-tcp"] == 0  # the cursor moved: nothing is sent twice


def test_a_syslog_receiver_that_is_down_keeps_its_place(engine: Engine) -> None:
    from intelharness import free_tcp_port

    down = SyslogSettings("down", f"127.0.0.1:{free_tcp_port()}", timeout=1)
    service = IntelService(engine, ORG, IntelSettings(syslog=(down,)), Context(), clock=later)
    publish(service)
    add_indicator(engine, "queued.example")
    assert "syslog:down" not in publish(service)
    with engine.connect() as connection:
        position = outbox.get_cursor(connection, "syslog:down")
    assert position["event_id"] < outbox_max(engine)


def outbox_max(engine: Engine) -> int:
    from sqlalchemy import func, select

    with engine.connect() as connection:
        return int(connection.execute(select(func.max(outbox.EVENTS.c.id))).scalar() or 0)


def test_message_framing_and_cef_escaping() -> None:
    event = {"id": 7, "type": "indicator.upserted", "created_at": "2026-03-02T12:00:00.123456+00:00",
             "data": {"indicator": {"type": "url", "value": "http://e.example/a=b|c\\d", "confidence": 80,
                                    "action": "monitor", "source": "api:x", "tags": ["t1", "t2"]}}}
    line = cef(event)
    assert line.startswith("CEF:0|Mailwarden|Mailwarden|") and "|indicator.upserted|" in line
    assert "request=http://e.example/a\\=b|c\\\\d" in line and "cs3=t1,t2" in line and "rt=1772452800123" in line
    settings = SyslogSettings("x", "127.0.0.1:514", format="json", hostname="mx1")
    data = message(event, settings)
    assert data.startswith(b"<133>1 2026-03-02T12:00:00.123Z mx1 mailwarden - indicator.upserted [origin ")
    framed = frame(data)
    length, _, rest = framed.partition(b" ")
    assert int(length) == len(rest) == len(data)
