"""The TAXII 2.1 server, read by OASIS ``taxii2-client`` over HTTP on loopback; every object it serves passes
``stix2-validator``; filters, manifest, versions, paging and media types checked directly too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from intelharness import NOW, LiveServer, build_app
from sqlalchemy import Engine
from stix2validator import ValidationOptions, validate_instance
from taxii2client.v21 import Server, as_pages

from mailwarden.api.keys import create_key
from mailwarden.gateway.server import open_engine
from mailwarden.intel import store
from mailwarden.intel.settings import IntelSettings
from mailwarden.intel.stix import bundle
from mailwarden.intel.store import NewIndicator, Sighting
from mailwarden.intel.taxii import COLLECTION_ID, TAXII_MEDIA_TYPE

T0 = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    found = open_engine(database_url)
    yield found
    found.dispose()


def fill(engine: Engine, count: int, start: datetime = T0) -> None:
    with engine.begin() as connection:
        for i in range(count):
            tags = ("lookalike-of:globex-logistics.test", "partner:Globex Logistics") if i % 5 == 0 else ()
            store.record(connection, NewIndicator("domain", f"bad{i}.example", confidence=60 + i % 40,
                                                  action="block" if i % 2 else "monitor", tags=tags),
                         now=start + timedelta(seconds=i), actor="test", producer="Acme Corp",
                         sighting=Sighting(f"ref{i}", f"<m{i}@x>") if i % 3 == 0 else None)


def validate(objects: list[dict[str, object]]) -> None:
    result = validate_instance(bundle(objects), ValidationOptions(version="2.1"))
    assert result.is_valid, [str(e) for e in result.errors]


def test_taxii2_client_discovers_lists_and_pages_with_added_after(engine: Engine, tmp_path: Path) -> None:
    fill(engine, 30)
    token = create_key(engine, name="taxii", scopes=["intel:read"], now=NOW)
    app, _, _ = build_app(engine, tmp_path / "data")
    with LiveServer(app) as live:
        server = Server(f"{live.url}/taxii2/", user="taxii", password=token)
        assert server.title == "Acme Corp TAXII server" and len(server.api_roots) == 1
        root = server.default
        assert root.versions == [TAXII_MEDIA_TYPE]
        [collection] = root.collections
        assert collection.id == COLLECTION_ID and collection.can_read and not collection.can_write
        seen: list[dict[str, object]] = []
        for envelope in as_pages(collection.get_objects, per_request=7):
            objects = envelope.get("objects", [])
            validate(objects)
            seen.extend(objects)
        kinds = [o["type"] for o in seen]
        assert kinds.count("indicator") == 30 and kinds.count("sighting") == 10
        assert kinds.count("relationship") == 6 and "identity" in kinds
        assert len({o["id"] for o in seen}) == len(seen)  # match[version]=last: one version each
        middle = collection.get_manifest()["objects"][20]["date_added"]
        later = []
        for envelope in as_pages(collection.get_objects, per_request=5, added_after=middle):
            later.extend(envelope.get("objects", []))
        assert 0 < len(later) < len(seen)
        assert all(o["id"] in {s["id"] for s in seen} for o in later)
        indicator = next(o for o in seen if o["type"] == "indicator")
        one = collection.get_object(indicator["id"])
        assert one["objects"][0]["pattern"] == indicator["pattern"]
        versions = collection.object_versions(indicator["id"])
        assert versions["versions"] == [indicator["modified"]]


def test_filters_versions_and_manifest(engine: Engine, tmp_path: Path) -> None:
    fill(engine, 4)
    with engine.begin() as connection:  # two more versions of bad1.example
        found = store._row(connection, "domain", "bad1.example")
        assert found is not None
        store.update_indicator(connection, found["id"], {"confidence": 99}, now=T0 + timedelta(minutes=5),
                               actor="t", producer="Acme Corp")
        store.revoke(connection, found["id"], now=T0 + timedelta(minutes=6), actor="t", producer="Acme Corp")
    token = create_key(engine, name="t", scopes=["intel:read"], now=NOW)
    app, _, _ = build_app(engine, tmp_path / "data")
    base = f"/taxii2/api/collections/{COLLECTION_ID}"
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {token}", "Accept": TAXII_MEDIA_TYPE}
        response = client.get(f"{base}/objects/", headers=headers, params={"match[type]": "indicator"})
        assert response.headers["content-type"] == TAXII_MEDIA_TYPE
        assert "x-taxii-date-added-first" in response.headers and "x-taxii-date-added-last" in response.headers
        indicators = response.json()["objects"]
        assert len(indicators) == 4 and all(o["type"] == "indicator" for o in indicators)
        revoked = next(o for o in indicators if "bad1.example" in o["pattern"])
        assert revoked["revoked"] is True and revoked["confidence"] == 99
        every = client.get(f"{base}/objects/", headers=headers,
                           params={"match[id]": revoked["id"], "match[version]": "all"}).json()["objects"]
        assert len(every) == 3 and len({o["modified"] for o in every}) == 3
        validate(every)
        first = client.get(f"{base}/objects/{revoked['id']}/", headers=headers,
                           params={"match[version]": "first"}).json()["objects"]
        assert len(first) == 1 and first[0]["modified"] == min(o["modified"] for o in every)
        chosen = client.get(f"{base}/objects/", headers=headers,
                            params={"match[version]": every[1]["modified"], "match[id]": revoked["id"]}).json()
        assert [o["modified"] for o in chosen["objects"]] == [every[1]["modified"]]
        versions = client.get(f"{base}/objects/{revoked['id']}/versions/", headers=headers).json()
        assert versions["versions"] == sorted(o["modified"] for o in every) and versions["more"] is False
        manifest = client.get(f"{base}/manifest/", headers=headers, params={"limit": 2}).json()
        assert manifest["more"] is True and len(manifest["objects"]) == 2 and manifest["next"]
        assert {"id", "date_added", "version", "media_type"} <= set(manifest["objects"][0])
        nothing = client.get(f"{base}/objects/", headers=headers, params={"match[spec_version]": "2.0"}).json()
        assert nothing == {"more": False}
        assert client.get(f"{base}/objects/", headers={**headers, "Accept": "application/xml"}).status_code == 406
        missing = client.get("/taxii2/api/collections/nope/objects/", headers=headers)
        assert missing.status_code == 404 and missing.headers["content-type"] == TAXII_MEDIA_TYPE
        assert missing.json()["http_status"] == "404"
        bad = client.get(f"{base}/objects/", headers=headers, params={"added_after": "yesterday"})
        assert bad.status_code == 400 and bad.json()["title"] == "Bad Request"
        assert client.get(f"{base}/objects/", headers=headers, params={"next": "!!"}).status_code == 400
        assert client.get(f"{base}/objects/indicator--00000000-0000-4000-8000-000000000000/",
                          headers=headers).status_code == 404
        refused = client.get(f"{base}/objects/", headers={"Accept": TAXII_MEDIA_TYPE})
        assert refused.status_code == 401 and refused.headers["content-type"] == TAXII_MEDIA_TYPE


def test_allow_listed_objects_are_not_served(engine: Engine, tmp_path: Path) -> None:
    fill(engine, 2)
    token = create_key(engine, name="t", scopes=["intel:read"], now=NOW)
    app, _, _ = build_app(engine, tmp_path / "data", IntelSettings(allowlist=("bad0.example",), api_rate=1000,
                                                                   api_burst=1000))
    with TestClient(app) as client:
        objects = client.get(f"/taxii2/api/collections/{COLLECTION_ID}/objects/",
                             headers={"Authorization": f"Bearer {token}"}).json()["objects"]
    patterns = [o["pattern"] for o in objects if o["type"] == "indicator"]
    assert patterns == ["[domain-name:value = 'bad1.example']"]


def test_paging_keeps_up_with_objects_added_meanwhile(engine: Engine, tmp_path: Path) -> None:
    fill(engine, 3)
    token = create_key(engine, name="t", scopes=["intel:read"], now=NOW)
    app, _, _ = build_app(engine, tmp_path / "data")
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {token}"}
        url = f"/taxii2/api/collections/{COLLECTION_ID}/objects/"
        page = client.get(url, headers=headers, params={"limit": 2}).json()
        time.sleep(0.01)
        fill(engine, 1, start=datetime.now(UTC))  # bad0 again: a new version, added after the first page
        rest: list[dict[str, object]] = []
        token_next = page["next"]
        while token_next:
            more = client.get(url, headers=headers, params={"limit": 2, "next": token_next}).json()
            rest.extend(more.get("objects", []))
            token_next = more.get("next")
        assert len(page["objects"]) + len(rest) >= 4
