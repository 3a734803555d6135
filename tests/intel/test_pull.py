"""Pulling: from our own TAXII server started in-process on loopback (another database), and from a MISP feed
directory (written by ``intel export --format misp``) served by a small HTTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from intelharness import NOW, LiveServer, build_app, file_server
from sqlalchemy import Engine

from mailwarden.api.keys import create_key
from mailwarden.gateway.server import open_engine
from mailwarden.intel import feeds, store
from mailwarden.intel.allowlist import AllowList
from mailwarden.intel.pull import PullError, pull
from mailwarden.intel.settings import PullSettings
from mailwarden.intel.store import NewIndicator
from mailwarden.intel.taxii import COLLECTION_ID


@pytest.fixture
def source_engine(tmp_path: Path) -> Iterator[Engine]:
    found = open_engine(f"sqlite:///{tmp_path / 'source' / 'mw.db'}")
    yield found
    found.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    found = open_engine(database_url)
    yield found
    found.dispose()


def seed(engine: Engine) -> None:
    now = datetime.now(UTC) - timedelta(minutes=5)
    with engine.begin() as connection:
        for kind, value, action in [("domain", "pulled.example", "block"),
                                    ("url", "http://pulled.example/x", "monitor"), ("ipv4", "203.0.113.44", "monitor"),
                                    ("file-sha256", "cd" * 32, "block"), ("email-addr", "x@pulled.example", "monitor")]:
            store.record(connection, NewIndicator(kind, value, confidence=85, action=action, tags=("ours",)),
                         now=now, actor="seed", producer="Partner ISAC")


def test_pull_from_a_taxii_server(source_engine: Engine, engine: Engine, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    seed(source_engine)
    token = create_key(source_engine, name="puller", scopes=["intel:read"], now=NOW)
    monkeypatch.setenv("ISAC_TOKEN", token)
    app, _, _ = build_app(source_engine, tmp_path / "source-data")
    with LiveServer(app) as live:
        source = PullSettings("isac", "taxii", f"{live.url}/taxii2/api/collections/{COLLECTION_ID}/",
                              token_env="ISAC_TOKEN", tags=("isac",))
        report = pull(engine, source)
        assert report.recorded == 5 and report.refused == 0 and report.objects >= 5
        found = {i["value"]: i for i in store.search(engine).items}
        assert set(found) == {"pulled.example", "http://pulled.example/x", "203.0.113.44", "cd" * 32,
                              "x@pulled.example"}
        assert found["pulled.example"]["source"] == "feed:isac" and found["pulled.example"]["confidence"] == 85
        assert {"ours", "isac", "feed:isac"} <= set(found["pulled.example"]["tags"])
        assert found["pulled.example"]["action"] == "monitor"  # the source's blocks stay ours to decide
        again = pull(engine, source)  # added_after: nothing new
        assert again.objects == 0
        with source_engine.begin() as connection:
            row = store._row(connection, "domain", "pulled.example")
            assert row is not None
            store.revoke(connection, row["id"], now=datetime.now(UTC), actor="isac", producer="Partner ISAC")
        revoked = pull(engine, source)
        assert revoked.revoked == 1
        assert store.find(engine, "domain", "pulled.example")["revoked"] is True  # type: ignore[index]
        bad = PullSettings("bad", "taxii", f"{live.url}/taxii2/api/collections/{COLLECTION_ID}/",
                           token_env="NO_SUCH_TOKEN")
        with pytest.raises(PullError, match="NO_SUCH_TOKEN is not set"):
            pull(engine, bad)
        monkeypatch.setenv("WRONG_TOKEN", "mwk_0000_wrong")
        with pytest.raises(PullError, match="401"):
            pull(engine, PullSettings("bad", "taxii", source.url, token_env="WRONG_TOKEN"))


def test_pull_from_a_misp_feed_directory(source_engine: Engine, engine: Engine, tmp_path: Path) -> None:
    seed(source_engine)
    rows = feeds.published(source_engine, now=datetime.now(UTC), allow=AllowList.for_org())
    feed = feeds.misp_feed(rows, "Partner ISAC")
    directory = tmp_path / "misp"
    directory.mkdir()
    (directory / "manifest.json").write_text(json.dumps(feed.manifest), encoding="utf-8")
    (directory / "hashes.csv").write_text(feed.hashes, encoding="utf-8")
    for event_uuid, event in feed.events.items():
        body = event["Event"]
        body["Attribute"].append({"uuid": "00000000-0000-4000-8000-000000000001", "type": "domain|ip",
                                  "category": "Network activity", "value": "pair.example|198.51.100.77",
                                  "to_ids": True, "timestamp": "1"})
        body["Attribute"].append({"uuid": "00000000-0000-4000-8000-000000000002", "type": "domain",
                                  "category": "Network activity", "value": "not-for-ids.example", "to_ids": False,
                                  "timestamp": "1"})
        (directory / f"{event_uuid}.json").write_text(json.dumps(event), encoding="utf-8")
    with file_server(directory) as url:
        source = PullSettings("circl", "misp", url, confidence=65, action="block")
        report = pull(engine, source)
        values = {i["value"]: i for i in store.search(engine).items}
        assert {"pulled.example", "http://pulled.example/x", "203.0.113.44", "cd" * 32, "x@pulled.example",
                "pair.example", "198.51.100.77"} == set(values)
        assert values["pair.example"]["action"] == "block" and values["pair.example"]["confidence"] == 65
        assert report.recorded == 7
        assert pull(engine, source).objects == 0  # event timestamps unchanged: nothing read again
