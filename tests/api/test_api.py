"""The HTTP API: every endpoint authenticated and scoped, problem details, logs, quarantine, queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from apiharness import NOW, Api
from sqlalchemy import select

from mailwarden.gateway import logs, quarantine
from mailwarden.gateway.queue import QUEUE

ENDPOINTS = [("get", "/api/v1/quarantine"), ("get", "/api/v1/quarantine/1"), ("post", "/api/v1/quarantine/1/release"),
             ("delete", "/api/v1/quarantine/1"), ("get", "/api/v1/logs/rejections"),
             ("get", "/api/v1/logs/releases"), ("get", "/api/v1/queue")]

RAW = (b"From: Evil <ceo@evil.test>\r\nTo: bob@acme.test\r\nSubject: <script>alert(1)</script> pay\r\n"
       b"Message-ID: <h1@evil.test>\r\nContent-Type: text/html\r\n\r\n"
       b"<p>Pay <b>now</b> \x1b[31m<img src=x onerror=alert(1)></p>\r\n")


def hold(api: Api, ref: str = "abc123", dmarc: str = "fail") -> int:
    api.spool.write(ref, RAW)
    with api.engine.begin() as connection:
        return quarantine.hold(connection, message_ref=ref, message_id="<h1@evil.test>",
                               blob=api.spool.blob_name(ref), client_ip="192.0.2.1", helo="evil.test",
                               mail_from="ceo@evil.test", recipients=["bob@acme.test"], header_from="ceo@evil.test",
                               subject="<script>alert(1)</script> pay", verdict="quarantine", score=70,
                               signals=[{"id": "auth.dmarc_fail", "score": 35, "detail": "DMARC fail"}],
                               auth_results="mx.acme.test; dmarc=fail", spf="fail", dkim="none", dmarc=dmarc,
                               received_at=NOW)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_needs_a_key(api: Api, method: str, path: str) -> None:
    response = api.client.request(method, path)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    problem = response.json()
    assert problem["status"] == 401 and problem["title"] == "Unauthorized" and problem["instance"] == path
    wrong = api.client.request(method, path, headers={"Authorization": "Bearer mwk_0000_nope"})
    assert wrong.status_code == 401


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_a_key_without_the_scope_is_forbidden(api: Api, method: str, path: str) -> None:
    scope = "quarantine:read" if "logs" in path else "read:logs"
    response = api.client.request(method, path, headers=api.key(scope))
    assert response.status_code == 403 and response.json()["required_scope"]


def test_openapi_lists_the_api(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    assert {"/api/v1/quarantine", "/api/v1/quarantine/{quarantine_id}/release", "/api/v1/logs/rejections",
            "/api/v1/logs/releases", "/api/v1/queue"} <= set(document["paths"])
    assert "HTTPBearer" in document["components"]["securitySchemes"]


def test_quarantine_preview_is_text_only_and_escaped(api: Api) -> None:
    held = hold(api)
    headers = api.key("quarantine:read")
    listed = api.client.get("/api/v1/quarantine", headers=headers).json()
    [item] = listed["items"]
    assert item["id"] == held and item["subject"] == "&lt;script&gt;alert(1)&lt;/script&gt; pay"
    assert "blob" not in item and listed["next_cursor"] is None
    shown = api.client.get(f"/api/v1/quarantine/{held}", headers=headers).json()
    assert "<" not in shown["preview"] and "\x1b" not in shown["preview"] and "Pay now" in shown["preview"]
    assert api.client.get("/api/v1/quarantine/999", headers=headers).status_code == 404


def test_release_queues_the_original_and_logs_who(api: Api) -> None:
    held = hold(api)
    headers = api.key("quarantine:release", name="soc-analyst")
    response = api.client.post(f"/api/v1/quarantine/{held}/release", headers=headers)
    assert response.status_code == 200 and response.json()["state"] == "released" and api.woken
    with api.engine.connect() as connection:
        [entry] = connection.execute(select(QUEUE))
    assert entry.kind == "release" and entry.recipients == ["bob@acme.test"] and entry.destination == "127.0.0.1:2526"
    assert "X-Mailwarden-Verdict: quarantine" in entry.prepend and entry.banner is None
    again = api.client.post(f"/api/v1/quarantine/{held}/release", headers=headers)
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    despite = api.client.get("/api/v1/logs/releases?dmarc=fail", headers=api.key("read:logs")).json()["items"]
    assert [(r["who"], r["dmarc"], r["message_id"]) for r in despite] == [("apikey:soc-analyst", "fail",
                                                                         "<h1@evil.test>")]


def test_delete_removes_the_message(api: Api) -> None:
    held = hold(api)
    headers = api.key("admin")
    assert api.client.delete(f"/api/v1/quarantine/{held}", headers=headers).status_code == 204
    assert api.spool.refs() == []
    assert api.client.get("/api/v1/quarantine?state=deleted", headers=headers).json()["items"][0]["id"] == held
    assert api.client.delete(f"/api/v1/quarantine/{held}", headers=headers).status_code == 409


def test_rejections_filter_by_time_and_reason_with_cursor_pages(api: Api) -> None:
    with api.engine.begin() as connection:
        for n in range(7):
            logs.record_rejection(connection, time=NOW + timedelta(minutes=n), client_ip="192.0.2.1", helo="h",
                                  mail_from="a@b.test", recipients=["bob@acme.test"], header_from="a@b.test",
                                  message_id=f"<{n}@b.test>", reason="dmarc" if n % 2 else "threat",
                                  detail="d", dmarc="fail")
    headers = api.key("read:logs")
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": 2, "reason": "threat"} | ({"cursor": cursor} if cursor else {})
        page = api.client.get("/api/v1/logs/rejections", params=query, headers=headers).json()
        seen += [item["message_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["<6@b.test>", "<4@b.test>", "<2@b.test>", "<0@b.test>"]
    window = api.client.get("/api/v1/logs/rejections", headers=headers, params={
        "since": (NOW + timedelta(minutes=2)).isoformat(), "until": (NOW + timedelta(minutes=4)).isoformat()}).json()
    assert [item["message_id"] for item in window["items"]] == ["<3@b.test>", "<2@b.test>"]
    bad = api.client.get("/api/v1/logs/rejections?cursor=garbage", headers=headers)
    assert bad.status_code == 400 and bad.json()["detail"].startswith("invalid cursor")
    invalid = api.client.get("/api/v1/logs/rejections?reason=nonsense", headers=headers)
    assert invalid.status_code == 422 and invalid.json()["errors"]


def test_queue_list_is_for_admins(api: Api) -> None:
    held = hold(api)
    quarantine.release(api.engine, api.spool, held, who="x", destination="127.0.0.1:2526", now=NOW, expire_after=60,
                       authserv_id="mx.acme.test", server_name="mx.acme.test")
    page = api.client.get("/api/v1/queue", headers=api.key("admin")).json()
    [entry] = page["items"]
    assert entry["state"] == "pending" and "prepend" not in entry
