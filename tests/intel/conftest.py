"""Fixtures for the threat-intel tests (see ``intelharness``): the API on SQLite and PostgreSQL, live servers,
a webhook receiver, a real rsyslog."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from intelharness import IntelApi, Rsyslog, build_app, rsyslogd_path, run_rsyslog

from mailwarden.gateway.server import open_engine


@pytest.fixture
def intel_api(database_url: str, tmp_path: Path) -> Iterator[IntelApi]:
    engine = open_engine(database_url)
    clock = [datetime.now(UTC)]
    app, spool, blobs = build_app(engine, tmp_path / "data", clock=clock)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield IntelApi(client, app, engine, spool, blobs, clock)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def rsyslog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    if rsyslogd_path() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("rsyslogd is required in CI (scripts/test installs rsyslog and rsyslog-openssl)")
        pytest.skip("rsyslogd not installed (apt-get install rsyslog rsyslog-openssl)")
    with run_rsyslog(tmp_path_factory.mktemp("rsyslog")) as server:
        yield server
