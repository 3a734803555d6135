"""schemathesis against the served OpenAPI document: every intel operation, generated requests with an admin key,
no 5xx, responses as documented (status codes, content types, schemas)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from intelharness import NOW, build_app
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from mailwarden.api.keys import create_key
from mailwarden.gateway.server import open_engine
from mailwarden.intel import store

INTEL_PATHS = r"^/(api/v1/(indicators|events|webhooks|intel)|feeds)"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    directory: Path = tmp_path_factory.mktemp("schemathesis")
    engine = open_engine(f"sqlite:///{directory / 'mw.db'}")
    with engine.begin() as connection:
        for i in range(5):
            store.record(connection, store.NewIndicator("domain", f"s{i}.example", confidence=80,
                                                        action="block" if i % 2 else "monitor"),
                         now=NOW, actor="seed")
    token = create_key(engine, name="fuzz", scopes=["admin"], now=NOW)
    app, _, _ = build_app(engine, directory / "data")
    yield schemathesis.openapi.from_asgi("/openapi.json", app), token
    engine.dispose()


@pytest.fixture(scope="module")
def api_schema(served: tuple[object, str]) -> object:
    return served[0]


@pytest.fixture(scope="module")
def admin_token(served: tuple[object, str]) -> str:
    return served[1]


schema = schemathesis.pytest.from_fixture("api_schema").include(path_regex=INTEL_PATHS)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_intel_api_matches_its_openapi_document(case: schemathesis.Case, admin_token: str) -> None:
    response = case.call(headers={"Authorization": f"Bearer {admin_token}"})
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                             response_schema_conformance])
