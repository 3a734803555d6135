"""``/api/v1/indicators``, ``/events``, ``/webhooks``, ``/intel/audit`` on SQLite and PostgreSQL: scoped keys,
bulk creation, updates, revocation, search, sightings, rate limits, and the retro-hunt over the archive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from intelharness import IntelApi, build_app

from mailwarden.gateway import archive
from mailwarden.gateway.server import open_engine
from mailwarden.intel.settings import IntelSettings
from mailwarden.message import parse

READ_ENDPOINTS = [
    ("get", "/api/v1/indicators"), ("get", "/api/v1/indicators/1"), ("get", "/api/v1/indicators/1/sightings"),
    ("get", "/api/v1/indicators/1/hunts"), ("get", "/api/v1/events"), ("get", "/api/v1/intel/audit"),
    ("get", "/api/v1/webhooks/deliveries"), ("get", "/feeds/domains.txt"), ("get", "/feeds/urls.txt"),
    ("get", "/feeds/ips.txt"), ("get", "/feeds/rpz.zone"), ("get", "/feeds/misp/manifest.json"),
    ("get", "/feeds/misp/hashes.csv"), ("get", "/feeds/indicators.csv"), ("get", "/feeds/stix.json"),
    ("get", "/taxii2/"), ("get", "/taxii2/api/"), ("get", "/taxii2/api/collections/"),
]
WRITE_ENDPOINTS = [
    ("post", "/api/v1/indicators"), ("patch", "/api/v1/indicators/1"), ("post", "/api/v1/indicators/1/revoke"),
    ("post", "/api/v1/indicators/1/retrohunt"), ("post", "/api/v1/webhooks/deliveries/1/replay"),
    ("post", "/api/v1/webhooks/replay"),
]


@pytest.mark.parametrize(("method", "path"), READ_ENDPOINTS + WRITE_ENDPOINTS)
def test_every_endpoint_refuses_a_missing_or_wrong_scope_key(intel_api: IntelApi, method: str, path: str) -> None:
    missing = intel_api.client.request(method, path)
    assert missing.status_code == 401 and "Bearer" in missing.headers["www-authenticate"]
    wrong = intel_api.client.request(method, path, headers={"Authorization": "Bearer mwk_0000_nope"})
    assert wrong.status_code == 401
    scope = "read:logs" if (method, path) in READ_ENDPOINTS else "intel:read"
    forbidden = intel_api.client.request(method, path, headers=intel_api.key(scope), json={})
    assert forbidden.status_code == 403
    if not path.startswith("/taxii2"):
        assert forbidden.headers["content-type"] == "application/problem+json"
        assert forbidden.json()["required_scope"] in ("intel:read", "intel:write")


def test_create_update_revoke_and_search(intel_api: IntelApi) -> None:
    writer, reader = intel_api.key("intel:write", name="soar"), intel_api.key("intel:read")
    created = intel_api.client.post("/api/v1/indicators", headers=writer, json={
        "type": "domain", "value": "Evil.Example", "confidence": 90, "action": "block",
        "valid_until": "2030-01-01T00:00:00Z", "tags": ["campaign:invoice"]})
    assert created.status_code == 201, created.text
    body = created.json()
    indicator = body["indicator"]
    assert indicator["value"] == "evil.example" and indicator["source"] == "api:soar"
    assert body["retrohunt"]["matches"] == []  # a block hunts at once; nothing is archived yet
    again = intel_api.client.post("/api/v1/indicators?retrohunt=false", headers=writer,
                                  json={"type": "domain", "value": "evil.example", "confidence": 95})
    assert again.status_code == 200 and "retrohunt" not in again.json()
    patched = intel_api.client.patch(f"/api/v1/indicators/{indicator['id']}", headers=writer,
                                      json={"severity": "low", "tags": ["reviewed"]})
    assert patched.status_code == 200 and patched.json()["changes"] == {"severity": "low", "tags": ["reviewed"]}
    assert intel_api.client.get(f"/api/v1/indicators/{indicator['id']}", headers=reader).json()["severity"] == "low"
    listed = intel_api.client.get("/api/v1/indicators?type=domain&active=true", headers=reader).json()
    assert [i["value"] for i in listed["items"]] == ["evil.example"]
    revoked = intel_api.client.post(f"/api/v1/indicators/{indicator['id']}/revoke", headers=writer,
                                    json={"reason": "sinkholed"})
    assert revoked.status_code == 200 and revoked.json()["indicator"]["revoked_reason"] == "sinkholed"
    assert intel_api.client.get("/api/v1/indicators?active=true", headers=reader).json()["items"] == []
    audit = intel_api.client.get(f"/api/v1/intel/audit?indicator_id={indicator['id']}", headers=reader).json()
    assert [a["action"] for a in audit["items"]][:3] == ["revoke", "update", "update"]
    assert all(a["actor"] == "apikey:soar" for a in audit["items"] if a["action"] != "retrohunt")
    events = intel_api.client.get("/api/v1/events?type=indicator.revoked", headers=reader).json()["items"]
    assert events[0]["payload"]["indicator"]["value"] == "evil.example"
    assert intel_api.client.get("/api/v1/indicators/999", headers=reader).status_code == 404
    assert intel_api.client.get("/api/v1/indicators?cursor=bogus", headers=reader).status_code == 400


def test_bulk_creation_reports_each_item(intel_api: IntelApi) -> None:
    response = intel_api.client.post("/api/v1/indicators?retrohunt=false", headers=intel_api.key("intel:write"),
                                     json=[{"type": "ipv4", "value": "203.0.113.7", "action": "block"},
                                           {"type": "domain", "value": "acme.test"},
                                           {"type": "email-addr", "value": "ceo@evil.example", "confidence": 70}])
    assert response.status_code == 200
    items = response.json()["items"]
    assert [i["status"] for i in items] == [201, 422, 201] and "allow-listed" in items[1]["error"]
    refused = intel_api.client.post("/api/v1/indicators", headers=intel_api.key("intel:write"),
                                    json={"type": "domain", "value": "google.com"})
    assert refused.status_code == 422 and "public service" in refused.json()["detail"]
    invalid = intel_api.client.post("/api/v1/indicators", headers=intel_api.key("intel:write"),
                                    json={"type": "domain", "value": "x", "extra": 1})
    assert invalid.status_code == 422 and invalid.headers["content-type"] == "application/problem+json"


def test_a_key_past_its_rate_limit_gets_429(database_url: str, tmp_path: Path) -> None:
    engine = open_engine(database_url)
    try:
        app, _, _ = build_app(engine, tmp_path / "data", IntelSettings(api_rate=0.5, api_burst=3))
        with TestClient(app) as client:
            api = IntelApi(client, app, engine, None, None, [])  # type: ignore[arg-type]
            headers, other = api.key("intel:read"), api.key("intel:read", name="other")
            codes = [client.get("/api/v1/indicators", headers=headers).status_code for _ in range(5)]
            assert codes == [200, 200, 200, 429, 429]
            limited = client.get("/feeds/domains.txt", headers=headers)
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
            assert limited.headers["content-type"] == "application/problem+json"
            assert client.get("/api/v1/indicators", headers=other).status_code == 200  # per key
            admin = api.key("admin", name="admin")
            core = [client.get("/api/v1/logs/rejections", headers=admin).status_code for _ in range(4)]
            assert core == [200, 200, 200, 429]  # the gateway's own routes share the same limit
    finally:
        engine.dispose()


def _archive(api: IntelApi, ref: str, raw: bytes, actions: list[str], when: datetime,
             mail_from: str = "billing@evil.example") -> int:
    message = parse(raw)
    digest, _ = api.blobs.put(raw)
    with api.engine.begin() as connection:
        return archive.add(connection, ref=ref, message=message, received_at=when, client_ip="198.51.100.20",
                           helo="mx.example", mail_from=mail_from, recipients=["bob@acme.test"],
                           verdict="deliver", score=10, signals=[], actions=actions, blob=digest, size=len(raw))


def _mail(link: str, message_id: str, sender: str = "billing@evil.example") -> bytes:
    return (f"From: Billing <{sender}>\r\nTo: bob@acme.test\r\nSubject: Invoice\r\n"
            f"Message-ID: {message_id}\r\nContent-Type: text/html\r\n\r\n"
            f'<p>Please pay <a href="{link}">here</a></p>\r\n').encode()


def test_posting_a_block_hunts_the_archive_and_remediates(intel_api: IntelApi) -> None:
    when = datetime.now(UTC) - timedelta(days=1)
    delivered = _archive(intel_api, "ref-delivered", _mail("http://pay.evil.example/inv?id=1", "<a1@x>"),
                         ["deliver"], when)
    held = _archive(intel_api, "ref-held", _mail("http://other.evil.example/x", "<a2@x>"), ["quarantine"], when)
    other = _archive(intel_api, "ref-other", _mail("http://fine.example/x", "<a3@x>", "ann@fine.example"),
                     ["deliver"], when, "ann@fine.example")
    writer = intel_api.key("intel:write", name="soar")
    url = intel_api.client.post("/api/v1/indicators?remediate=false", headers=writer, json={
        "type": "url", "value": "http://pay.evil.example/inv?id=1", "action": "block"}).json()
    assert [m["archive_id"] for m in url["retrohunt"]["matches"]] == [delivered]
    assert url["retrohunt"]["actions"] == [] and url["retrohunt"]["covered"]["archive"] is True
    posted = intel_api.client.post("/api/v1/indicators?remediate=true", headers=writer, json={
        "type": "domain", "value": "evil.example", "confidence": 90, "action": "block"})
    assert posted.status_code == 201
    hunt = posted.json()["retrohunt"]
    assert sorted(m["archive_id"] for m in hunt["matches"]) == [delivered, held]
    actions = {(a["action"], a["message_ref"]) for a in hunt["actions"]}
    assert actions == {("removed_from_archive", "ref-delivered"), ("removed_from_archive", "ref-held"),
                       ("mailbox_removal_pending", "ref-delivered"), ("quarantine_deleted", "ref-held")}
    assert archive.get(intel_api.engine, delivered) is None and archive.get(intel_api.engine, other) is not None
    removals = archive.list_removals(intel_api.engine).items
    assert removals[0]["count"] == 2 and removals[0]["who"] == "retrohunt:apikey:soar"
    indicator_id = posted.json()["indicator"]["id"]
    reader = intel_api.key("intel:read")
    sightings = intel_api.client.get(f"/api/v1/indicators/{indicator_id}/sightings", headers=reader).json()["items"]
    assert {s["message_ref"] for s in sightings} == {"ref-delivered", "ref-held"}
    assert all(s["source"] == "hunt" for s in sightings)
    hunts = intel_api.client.get(f"/api/v1/indicators/{indicator_id}/hunts", headers=reader).json()["items"]
    assert hunts[0]["remediate"] is True and len(hunts[0]["actions"]) == 4
    audit = intel_api.client.get(f"/api/v1/intel/audit?indicator_id={indicator_id}", headers=reader).json()["items"]
    assert {"retrohunt", "removed_from_archive", "mailbox_removal_pending"} <= {a["action"] for a in audit}
    again = intel_api.client.post(f"/api/v1/indicators/{indicator_id}/retrohunt", headers=writer).json()
    assert again["matches"] == []


def test_openapi_documents_the_intel_api(intel_api: IntelApi) -> None:
    paths = set(intel_api.client.get("/openapi.json").json()["paths"])
    assert {"/api/v1/indicators", "/api/v1/indicators/{indicator_id}", "/api/v1/indicators/{indicator_id}/revoke",
            "/api/v1/events", "/api/v1/webhooks/deliveries", "/feeds/rpz.zone", "/api/v1/intel/audit"} <= paths
