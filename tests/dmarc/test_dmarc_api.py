"""The DMARC API: uploads (idempotent, problem details naming the parser's error), summaries, failing
sources, who sends as us, alerts (also under /logs), posture; scopes, cursors and parsedmarc's field names.
The API runs on a real database (SQLite and PostgreSQL) through FastAPI's TestClient; posture checks ask
a real DNS server (Knot on loopback)."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import reportgen
from apiharness import NOW, Api
from test_dmarc_ingest import report_xml
from typer.testing import CliRunner

from mailwarden.api.app import create_app
from mailwarden.cli import app as cli_app
from mailwarden.config import OrgConfig, Partner
from mailwarden.dmarc.ingest import DmarcIngest
from mailwarden.dmarc.schedule import check_and_record
from mailwarden.dns import LiveResolver

READ_ENDPOINTS = ["/api/v1/dmarc/summary", "/api/v1/dmarc/sources", "/api/v1/dmarc/senders", "/api/v1/dmarc/alerts",
                  "/api/v1/dmarc/posture"]
DOMAIN = "acme.example"


def upload(api: Api, body: bytes, name: str | None = None, scope: str = "dmarc:write") -> Any:
    params = {"name": name} if name else {}
    return api.client.post("/api/v1/dmarc/reports", content=body, params=params,
                           headers={**api.key(scope), "Content-Type": "application/octet-stream"})


def ingest(api: Api, *reports: bytes) -> None:
    store = DmarcIngest(api.engine, api.spool.directory.parent, own_domains=(DOMAIN,), clock=lambda: NOW)
    for raw in reports:
        assert store.ingest_bytes(raw, "test").ok


def history(api: Api) -> None:
    """A baseline report, then two with a new unauthorised source each, and one for a subdomain."""
    ingest(api,
           report_xml("a1", [("192.0.2.10", 90, True, True), ("192.0.2.11", 10, True, False)], begin=1_780_000_000),
           report_xml("a2", [("192.0.2.10", 80, True, True), ("203.0.113.66", 25, False, False),
                             ("198.51.100.5", 4, True, False), ("198.51.100.5", 6, False, False)],
                      begin=1_780_086_400),
           report_xml("a3", [("192.0.2.10", 70, True, True), ("203.0.113.77", 5, False, False)],
                      domain="sub.acme.example", org="other.example", begin=1_780_172_800),
           report_xml("a4", [("192.0.2.10", 50, True, True), ("203.0.113.99", 7, False, False)],
                      begin=1_780_259_200))


@pytest.mark.parametrize("path", [*READ_ENDPOINTS, "/api/v1/logs/dmarc-alerts"])
def test_reading_needs_a_key_with_the_scope(api: Api, path: str) -> None:
    assert api.client.get(path).status_code == 401
    forbidden = api.client.get(path, headers=api.key("quarantine:read"))
    assert forbidden.status_code == 403 and forbidden.headers["content-type"] == "application/problem+json"
    scope = "read:logs" if "/logs/" in path else "dmarc:read"
    assert forbidden.json()["required_scope"] == scope
    assert api.client.get(path, headers=api.key(scope)).status_code == 200
    assert api.client.get(path, headers=api.key("admin")).status_code == 200


def test_upload_needs_dmarc_write(api: Api) -> None:
    body = reportgen.aggregate_xml(3, seed=1, domain=DOMAIN)
    assert api.client.post("/api/v1/dmarc/reports", content=body).status_code == 401
    assert upload(api, body, scope="dmarc:read").status_code == 403


@pytest.mark.parametrize("kind", ["xml", "gz", "zip", "email"])
def test_upload_stores_a_report_once(api: Api, kind: str) -> None:
    xml = reportgen.aggregate_xml(7, seed=11, domain=DOMAIN, report_id=f"up-{kind}")
    if kind == "gz":
        body = gzip.compress(xml)
    elif kind == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("report.xml", xml)
        body = buffer.getvalue()
    elif kind == "email":
        from test_dmarc_gateway import report_mail

        body = report_mail(xml, to=f"dmarc@{DOMAIN}")
    else:
        body = xml
    first = upload(api, body, name=f"report.{kind}")
    assert first.status_code == 201, first.text
    result = first.json()
    assert (result["stored"], result["duplicates"], result["errors"], result["kept_aside"]) == (1, 0, [], False)
    [report] = result["reports"]
    assert report["report_type"] == "aggregate" and report["records"] == 7 and report["key"].endswith(DOMAIN)
    assert result["source"] == f"api:tester/report.{kind}"
    again = upload(api, body)
    assert again.status_code == 200 and (again.json()["stored"], again.json()["duplicates"]) == (0, 1)


@pytest.mark.parametrize(("body", "detail"), [
    (b"<?xml version='1.0'?><feedback><report_metadata><org_name>x", "invalid XML at line 1"),
    (b"<feedback>\xff\xfe</feedback>", "invalid UTF-8"),
    (b"\x1f\x8b\x08\x00garbage", "gzip"),
    (b"From: a@b.example\r\nSubject: hello\r\n\r\nno report here\r\n", "no report in this email"),
    (b"just text", "not a report"),
])
def test_bad_input_is_a_problem_naming_the_parsers_error(api: Api, body: bytes, detail: str) -> None:
    response = upload(api, body, name="bad.bin")
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert detail in problem["detail"] and problem["errors"][0]["error"] == problem["detail"]
    assert problem["kept_aside"] is True and problem["instance"] == "/api/v1/dmarc/reports"
    assert list((api.spool.directory.parent / "dmarc" / "invalid").glob("*-bad.bin.error.json"))


def test_empty_upload(api: Api) -> None:
    response = upload(api, b"  ")
    assert response.status_code == 422 and "empty upload" in response.json()["detail"]


def test_summary_sources_and_senders_use_parsedmarc_names_and_cursors(api: Api) -> None:
    history(api)
    headers = api.key("dmarc:read")
    by_domain = api.client.get("/api/v1/dmarc/summary", headers=headers).json()
    assert [(row["domain"], row["count"]) for row in by_domain["items"]] == [("acme.example", 272),
                                                                              ("sub.acme.example", 75)]
    acme = by_domain["items"][0]
    assert (acme["dmarc_aligned"], acme["dmarc_failed"], acme["reports"]) == (234, 38, 3)
    assert acme["disposition"] == {"none": 234, "quarantine": 0, "reject": 38}
    assert acme["rates"]["dmarc_aligned"] == round(234 / 272, 4)
    assert (acme["spf_aligned"], acme["dkim_aligned"]) == (220, 234)
    orgs = api.client.get("/api/v1/dmarc/summary", params={"by": "org_name"}, headers=headers).json()
    assert [row["org_name"] for row in orgs["items"]] == ["reporter.example", "other.example"]
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"by": "source_ip_address", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.client.get("/api/v1/dmarc/summary", params=params, headers=headers).json()
        pages.append([row["source_ip_address"] for row in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [["192.0.2.10", "203.0.113.66"], ["192.0.2.11", "198.51.100.5"], ["203.0.113.99", "203.0.113.77"]]
    sources = api.client.get("/api/v1/dmarc/sources", params={"domain": DOMAIN}, headers=headers).json()
    assert [(row["source_ip_address"], row["dmarc_failed"]) for row in sources["items"]] == [
        ("203.0.113.66", 25), ("203.0.113.99", 7), ("198.51.100.5", 6), ("203.0.113.77", 5)]
    senders = api.client.get("/api/v1/dmarc/senders", params={"domain": DOMAIN}, headers=headers).json()
    status = {row["source_ip_address"]: row["status"] for row in senders["items"]}
    assert status == {"192.0.2.10": "authorised", "203.0.113.66": "unknown", "192.0.2.11": "authorised",
                      "198.51.100.5": "mixed", "203.0.113.99": "unknown", "203.0.113.77": "unknown"}
    unknown = api.client.get("/api/v1/dmarc/senders", params={"status": "unknown", "limit": 1},
                             headers=headers).json()
    assert [row["source_ip_address"] for row in unknown["items"]] == ["203.0.113.66"] and unknown["next_cursor"]
    rest = api.client.get("/api/v1/dmarc/senders", params={"status": "unknown", "cursor": unknown["next_cursor"]},
                          headers=headers).json()
    assert [row["source_ip_address"] for row in rest["items"]] == ["203.0.113.99", "203.0.113.77"]
    assert rest["items"][1]["header_from"] == ["sub.acme.example"]
    bad = api.client.get("/api/v1/dmarc/summary", params={"cursor": "nonsense"}, headers=headers)
    assert bad.status_code == 400 and "invalid cursor" in bad.json()["detail"]
    assert api.client.get("/api/v1/dmarc/summary", params={"by": "nope"}, headers=headers).status_code == 422
    naive = api.client.get("/api/v1/dmarc/summary", params={"since": "2026-01-01T00:00:00"}, headers=headers)
    assert naive.status_code == 400


def test_alerts_next_to_the_logs_and_on_the_command_line(api: Api, tmp_path: Path) -> None:
    history(api)
    for path, scope in (("/api/v1/dmarc/alerts", "dmarc:read"), ("/api/v1/logs/dmarc-alerts", "read:logs")):
        found = api.client.get(path, headers=api.key(scope)).json()
        kinds = [(a["kind"], a["source_ip_address"]) for a in found["items"]]
        assert ("unauthorised_source", "203.0.113.66") in kinds
        first = api.client.get(path, params={"limit": 1}, headers=api.key(scope)).json()
        assert len(first["items"]) == 1 and first["next_cursor"]
        second = api.client.get(path, params={"limit": 1, "cursor": first["next_cursor"]},
                                headers=api.key(scope)).json()
        assert second["items"][0]["id"] < first["items"][0]["id"]
        only = api.client.get(path, params={"kind": "unauthorised_source", "domain": DOMAIN},
                              headers=api.key(scope)).json()
        assert {a["kind"] for a in only["items"]} == {"unauthorised_source"}
        assert api.client.get(path, params={"kind": "nope"}, headers=api.key(scope)).status_code == 422
    runner = CliRunner()
    env = {"MAILWARDEN_DATABASE_URL": str(api.engine.url.render_as_string(hide_password=False))}
    result = runner.invoke(cli_app, ["--data-dir", str(tmp_path / "cli"), "logs", "dmarc-alerts",
                                     "--kind", "unauthorised_source"], env=env)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and {r["kind"] for r in rows} == {"unauthorised_source"}
    assert "203.0.113.66" in {r["source_ip_address"] for r in rows}
    assert runner.invoke(cli_app, ["logs", "dmarc-alerts", "--kind", "x"], env=env).exit_code == 2


def test_posture_shows_the_stored_checks_and_checks_on_demand(api: Api, posture_dns: str) -> None:
    org = OrgConfig(name="Acme", domains=("strong.posture.test",),
                    partners=(Partner("Partner", ("partner.posture.test", "weak.posture.test")),))
    headers = api.key("dmarc:read")
    assert api.client.get("/api/v1/dmarc/posture", headers=headers).json() == {"items": [], "next_cursor": None}
    missing = api.client.get("/api/v1/dmarc/posture", params={"domain": "other.posture.test"}, headers=headers)
    assert missing.status_code == 404  # nothing stored, no resolver to check with
    with LiveResolver(posture_dns, timeout=1.0) as resolver:
        asyncio.run(check_and_record(api.engine, org, resolver, now=lambda: NOW))
        listed = api.client.get("/api/v1/dmarc/posture", params={"limit": 2}, headers=headers).json()
        assert [p["domain"] for p in listed["items"]] == ["partner.posture.test", "strong.posture.test"]
        assert listed["items"][0]["partner_flag"] == "no_dmarc" and listed["items"][0]["stored"] is True
        rest = api.client.get("/api/v1/dmarc/posture", params={"cursor": listed["next_cursor"]},
                              headers=headers).json()
        assert [p["domain"] for p in rest["items"]] == ["weak.posture.test"] and rest["next_cursor"] is None
        one = api.client.get("/api/v1/dmarc/posture", params={"domain": "Weak.Posture.Test."}, headers=headers).json()
        assert one["items"][0]["dmarc"]["strength"] == "monitoring" and one["items"][0]["changes"] == ["first check"]
        services = replace(api.client.app.state.services, org=org, resolver=resolver)  # type: ignore[attr-defined]
        from fastapi.testclient import TestClient

        with TestClient(create_app(services)) as gateway_api:
            fresh = gateway_api.get("/api/v1/dmarc/posture", params={"domain": "partial.posture.test"},
                                    headers=headers).json()
            [checked] = fresh["items"]
            assert checked["stored"] is False and checked["role"] == "other"
            assert checked["dmarc"]["strength"] == "partial"
            again = gateway_api.get("/api/v1/dmarc/posture", params={"domain": "strong.posture.test", "fresh": True},
                                    headers=headers).json()
            assert again["items"][0]["stored"] is False and again["items"][0]["role"] == "own"
    assert api.client.get("/api/v1/dmarc/posture", params={"fresh": True}, headers=headers).status_code == 400


def test_openapi_lists_the_dmarc_endpoints(api: Api) -> None:
    paths = set(api.client.get("/openapi.json").json()["paths"])
    assert {"/api/v1/dmarc/reports", "/api/v1/dmarc/summary", "/api/v1/dmarc/sources", "/api/v1/dmarc/senders",
            "/api/v1/dmarc/alerts", "/api/v1/dmarc/posture", "/api/v1/logs/dmarc-alerts"} <= paths
