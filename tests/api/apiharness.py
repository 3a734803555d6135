"""The API app on a real database (``database_url``: SQLite and PostgreSQL), called through FastAPI's
TestClient (httpx), with API keys made the way ``mailwarden apikey create`` makes them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from mailwarden.api.app import ApiServices, create_app
from mailwarden.api.keys import create_key
from mailwarden.gateway.server import open_engine
from mailwarden.gateway.settings import GatewaySettings
from mailwarden.gateway.spool import Spool
from mailwarden.store.blobs import BlobStore

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@dataclass
class Api:
    client: TestClient
    engine: Engine
    spool: Spool
    woken: list[bool]
    blobs: BlobStore

    def key(self, *scopes: str, name: str = "tester", user: str | None = None) -> dict[str, str]:
        key = create_key(self.engine, name=name, scopes=scopes, now=NOW, user=user)
        return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    engine = open_engine(database_url)
    spool = Spool(tmp_path / "data" / "spool").create()
    blobs = BlobStore(tmp_path / "data" / "archive").create()
    woken: list[bool] = []
    services = ApiServices(engine=engine, spool=spool, settings=GatewaySettings(relay="127.0.0.1:2526",
                                                                                 hostname="mx.acme.test"),
                           authserv_id="mx.acme.test", clock=lambda: NOW, wake=lambda: woken.append(True),
                           blobs=blobs)
    try:
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            yield Api(client, engine, spool, woken, blobs)
    finally:
        engine.dispose()
