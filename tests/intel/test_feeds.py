"""``/feeds/``: EDL lists, the RPZ zone (checked by BIND's named-checkzone), the MISP feed (read back by PyMISP),
CSV; expiry and the allow-list honoured; ETag and Last-Modified with 304; bearer or basic-auth keys."""

from __future__ import annotations

import csv
import io
import ipaddress
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from intelharness import IntelApi, build_app
from pymisp import MISPEvent

from mailwarden.intel import store
from mailwarden.intel.feeds import rpz_ip_trigger
from mailwarden.intel.settings import IntelSettings

SEED = [
    {"type": "domain", "value": "evil.example", "confidence": 90, "action": "block"},
    {"type": "domain", "value": "xn--bcher-kva.example", "confidence": 60},
    {"type": "url", "value": "https://pay.evil.example/inv?id=7", "confidence": 80},
    {"type": "url", "value": "http://203.0.113.8:8080/login", "confidence": 80},
    {"type": "ipv4", "value": "203.0.113.7", "confidence": 70, "action": "block"},
    {"type": "ipv6", "value": "2001:db8::7", "confidence": 70},
    {"type": "email-addr", "value": "ceo@evil.example", "confidence": 85},
    {"type": "file-sha256", "value": "ab" * 32, "confidence": 95},
    {"type": "domain", "value": "weak.example", "confidence": 20},
]


def seed(api: IntelApi) -> str:
    token = api.token("intel:read", "intel:write", name="seeder")
    response = api.client.post("/api/v1/indicators?retrohunt=false", json=SEED,
                               headers={"Authorization": f"Bearer {token}"})
    assert all(item["status"] == 201 for item in response.json()["items"]), response.text
    past = datetime.now(UTC) - timedelta(days=400)
    with api.engine.begin() as connection:  # learned long ago: expired by now
        store.record(connection, store.NewIndicator("domain", "expired.example", confidence=90), now=past,
                     actor="test")
    return token


def get(api: IntelApi, path: str, token: str, **headers: str) -> object:
    return api.client.get(path, headers={"Authorization": f"Bearer {token}", **headers})


def test_edl_lists_hold_one_valid_entry_per_line(intel_api: IntelApi) -> None:
    token = seed(intel_api)
    domains = intel_api.client.get("/feeds/domains.txt", headers={"Authorization": f"Bearer {token}"})
    assert domains.status_code == 200 and domains.headers["content-type"].startswith("text/plain")
    assert domains.text == "evil.example\nxn--bcher-kva.example\n"  # weak (20) below 50, expired left out
    for line in domains.text.splitlines():
        assert re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", line)
    urls = intel_api.client.get("/feeds/urls.txt", auth=("firewall", token))  # basic auth: what PAN-OS sends
    assert urls.status_code == 200
    assert urls.text.splitlines() == ["203.0.113.8:8080/login", "pay.evil.example/inv?id=7"]
    assert all("://" not in line and len(line) <= 255 for line in urls.text.splitlines())
    kept = intel_api.client.get("/feeds/urls.txt?scheme=keep", auth=("firewall", token)).text
    assert kept.splitlines() == ["http://203.0.113.8:8080/login", "https://pay.evil.example/inv?id=7"]
    ips = intel_api.client.get("/feeds/ips.txt", headers={"Authorization": f"Bearer {token}"}).text
    assert ips == "203.0.113.7\n2001:db8::7\n"
    for line in ips.splitlines():
        ipaddress.ip_address(line)
    everything = intel_api.client.get("/feeds/domains.txt?min_confidence=0", auth=("x", token)).text
    assert "weak.example" in everything and "expired.example" not in everything


def test_the_allow_list_is_honoured_even_for_stored_values(database_url: str, tmp_path: Path,
                                                           intel_api: IntelApi) -> None:
    token = seed(intel_api)
    app, _, _ = build_app(intel_api.engine, tmp_path / "other", IntelSettings(allowlist=("evil.example",),
                                                                              api_rate=1000, api_burst=1000))
    with TestClient(app) as client:
        text = client.get("/feeds/domains.txt", auth=("fw", token)).text
        assert text == "xn--bcher-kva.example\n"
        rows = csv.DictReader(io.StringIO(client.get("/feeds/indicators.csv", auth=("fw", token)).text))
        assert {r["value"] for r in rows if r["type"] == "domain"} == {"xn--bcher-kva.example"}


def test_rpz_zone_passes_named_checkzone_and_its_serial_rises(intel_api: IntelApi, tmp_path: Path) -> None:
    token = seed(intel_api)
    first = intel_api.client.get("/feeds/rpz.zone", auth=("dns", token))
    text = first.text
    assert "evil.example CNAME .\n" in text and "*.evil.example CNAME .\n" in text
    assert f"{rpz_ip_trigger('203.0.113.7')} CNAME .\n" in text and "7.113.0.203.rpz-ip" in text
    assert "128.7.zz.db8.2001.rpz-ip CNAME .\n" in text and "weak.example" not in text
    checker = shutil.which("named-checkzone")
    if checker is None:
        pytest.skip("named-checkzone not installed (apt-get install bind9-utils)")
    zone = tmp_path / "rpz.zone"
    zone.write_text(text, encoding="utf-8")
    checked = subprocess.run([checker, "rpz.mailwarden", str(zone)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    serial = int(re.search(r"SOA \S+ \S+ \( (\d+) ", text).group(1))  # type: ignore[union-attr]
    same = intel_api.client.get("/feeds/rpz.zone", auth=("dns", token)).text
    assert same == text
    intel_api.client.post("/api/v1/indicators", headers={"Authorization": f"Bearer {token}"},
                          json={"type": "domain", "value": "new-evil.example", "confidence": 90})
    changed = intel_api.client.get("/feeds/rpz.zone", auth=("dns", token)).text
    assert int(re.search(r"SOA \S+ \S+ \( (\d+) ", changed).group(1)) == serial + 1  # type: ignore[union-attr]
    zone.write_text(changed, encoding="utf-8")
    assert subprocess.run([checker, "rpz.mailwarden", str(zone)], capture_output=True, check=False).returncode == 0


def test_feeds_answer_304_to_etag_and_last_modified(intel_api: IntelApi) -> None:
    token = seed(intel_api)
    auth = {"Authorization": f"Bearer {token}"}
    first = intel_api.client.get("/feeds/domains.txt", headers=auth)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert etag.startswith('"') and modified.endswith("GMT")
    again = intel_api.client.get("/feeds/domains.txt", headers={**auth, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    since = intel_api.client.get("/feeds/domains.txt", headers={**auth, "If-Modified-Since": modified})
    assert since.status_code == 304
    before = format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)
    assert intel_api.client.get("/feeds/domains.txt", headers={**auth, "If-Modified-Since": before}).status_code == 200
    intel_api.client.post("/api/v1/indicators", headers=auth, json={"type": "domain", "value": "z.example",
                                                                     "confidence": 90})
    changed = intel_api.client.get("/feeds/domains.txt", headers={**auth, "If-None-Match": etag})
    assert changed.status_code == 200 and "z.example" in changed.text and changed.headers["etag"] != etag
    for path in ("/feeds/misp/manifest.json", "/feeds/indicators.csv", "/feeds/stix.json", "/feeds/rpz.zone"):
        response = intel_api.client.get(path, headers=auth)
        repeat = intel_api.client.get(path, headers={**auth, "If-None-Match": response.headers["etag"]})
        assert repeat.status_code == 304, path


def test_misp_feed_is_read_back_by_pymisp(intel_api: IntelApi) -> None:
    token = seed(intel_api)
    auth = ("misp", token)
    manifest = intel_api.client.get("/feeds/misp/manifest.json", auth=auth).json()
    hashes = intel_api.client.get("/feeds/misp/hashes.csv", auth=auth).text.splitlines()
    values: set[str] = set()
    expected_hashes: list[str] = []
    for event_uuid, meta in manifest.items():
        response = intel_api.client.get(f"/feeds/misp/{event_uuid}.json", auth=auth)
        assert response.status_code == 200
        event = MISPEvent()
        event.load(response.text)
        assert event.uuid == event_uuid and event.published
        assert event.manifest[event_uuid]["info"] == meta["info"]
        assert event.manifest[event_uuid]["Orgc"]["name"] == "Acme Corp"
        assert int(event.manifest[event_uuid]["timestamp"]) == meta["timestamp"]
        expected_hashes += [f"{h},{event.uuid}" for h in event.attributes_hashes("md5")]
        for attribute in event.attributes:
            values.add(f"{attribute.type}:{attribute.value}")
            if attribute.value == "evil.example":
                assert attribute.to_ids and attribute.category == "Network activity"
    assert sorted(hashes) == sorted(expected_hashes)
    assert {"domain:evil.example", "url:https://pay.evil.example/inv?id=7", "ip-dst:203.0.113.7",
            "ip-dst:2001:db8::7", "email-src:ceo@evil.example", f"sha256:{'ab' * 32}"} <= values
    assert not any("expired.example" in v or "weak.example" in v for v in values)
    assert intel_api.client.get("/feeds/misp/00000000-0000-4000-8000-000000000000.json", auth=auth).status_code == 404


def test_csv_and_stix_bundle(intel_api: IntelApi) -> None:
    token = seed(intel_api)
    rows = list(csv.DictReader(io.StringIO(intel_api.client.get("/feeds/indicators.csv", auth=("x", token)).text)))
    assert {r["value"] for r in rows} >= {"evil.example", "203.0.113.7", "ceo@evil.example"}
    assert all(int(r["current_confidence"]) >= 50 for r in rows)
    bundle = intel_api.client.get("/feeds/stix.json", auth=("x", token))
    assert bundle.headers["content-type"].startswith("application/stix+json")
    body = bundle.json()
    assert body["type"] == "bundle" and sum(o["type"] == "indicator" for o in body["objects"]) == len(rows)
    from stix2validator import ValidationOptions, validate_instance

    result = validate_instance(body, ValidationOptions(version="2.1"))
    assert result.is_valid, [str(e) for e in result.errors]
