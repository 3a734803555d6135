"""``/api/v1/messages``: archive search with cursor pagination and escaping, reading, removal by id and by
query with the removal log, and the scopes ``messages:read`` / ``messages:delete``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from apiharness import NOW, Api

from mailwarden.gateway import archive, quarantine
from mailwarden.message import Envelope, parse

RAW = (b"From: Evil <ceo@evil.test>\r\nTo: bob@acme.test\r\nSubject: <script>alert(1)</script> pay \x1b[31mnow\r\n"
       b"Message-ID: <a1@evil.test>\r\nContent-Type: text/html\r\n\r\n"
       b'<p>Pay <a href="https://pay.evil-host.test/x">here</a></p>\r\n')


def archived(api: Api, raw: bytes = RAW, ref: str = "aa01", recipients: tuple[str, ...] = ("bob@acme.test",),
             minutes_ago: int = 0, hold: bool = False) -> int:
    message = parse(raw, Envelope(client_ip="192.0.2.1", mail_from="ceo@evil.test", rcpt_to=recipients))
    digest, _ = api.blobs.put(raw)
    when = NOW - timedelta(minutes=minutes_ago)
    with api.engine.begin() as connection:
        if hold:
            api.spool.write(ref, raw)
            quarantine.hold(connection, message_ref=ref, message_id=message.message_id, blob=api.spool.blob_name(ref),
                            client_ip="192.0.2.1", helo="evil.test", mail_from="ceo@evil.test",
                            recipients=list(recipients), header_from="ceo@evil.test", subject=message.subject,
                            verdict="quarantine", score=60, signals=[], received_at=when)
        return archive.add(connection, ref=ref, message=message, received_at=when, client_ip="192.0.2.1",
                           helo="evil.test", mail_from="ceo@evil.test", recipients=recipients,
                           verdict="quarantine" if hold else "deliver", score=60 if hold else 0, signals=[],
                           actions=["quarantine" if hold else "deliver"], blob=digest, size=len(raw))


@pytest.mark.parametrize(("method", "path", "scope"), [
    ("get", "/api/v1/messages/search", "messages:read"), ("get", "/api/v1/messages/1", "messages:read"),
    ("get", "/api/v1/messages/1/raw", "messages:read"), ("delete", "/api/v1/messages/1", "messages:delete"),
    ("delete", "/api/v1/messages?sender=a@b.test", "messages:delete"),
    ("get", "/api/v1/logs/removals", "read:logs")])
def test_messages_endpoints_need_their_scope(api: Api, method: str, path: str, scope: str) -> None:
    assert api.client.request(method, path).status_code == 401
    other = "quarantine:read" if scope != "quarantine:read" else "read:logs"
    assert api.client.request(method, path, headers=api.key(other)).status_code == 403
    assert api.client.request(method, path, headers=api.key(scope)).status_code in (200, 404)
    assert api.client.request(method, path, headers=api.key("admin")).status_code in (200, 404)


def test_search_escapes_the_subject_and_pages_with_a_cursor(api: Api) -> None:
    for n in range(5):
        archived(api, RAW.replace(b"a1@", f"a{n}@".encode()), ref=f"ab{n:02x}", minutes_ago=10 - n)
    headers = api.key("messages:read")
    first = api.client.get("/api/v1/messages/search", params={"domain": "evil-host.test", "limit": 2},
                           headers=headers).json()
    assert [i["message_id"] for i in first["items"]] == ["<a4@evil.test>", "<a3@evil.test>"]
    item = first["items"][0]
    assert item["subject"] == "&lt;script&gt;alert(1)&lt;/script&gt; pay [31mnow"  # escaped, no ESC
    assert item["recipients"] == ["bob@acme.test"] and item["received_at"].startswith("2026-03-02T11:54")
    rest = api.client.get("/api/v1/messages/search", params={"domain": "evil-host.test", "limit": 2,
                                                              "cursor": first["next_cursor"]}, headers=headers).json()
    assert [i["message_id"] for i in rest["items"]] == ["<a2@evil.test>", "<a1@evil.test>"]
    since = (NOW - timedelta(minutes=8, seconds=30)).isoformat()
    timed = api.client.get("/api/v1/messages/search", params={"since": since, "url_host": "PAY.evil-host.test"},
                           headers=headers).json()
    assert len(timed["items"]) == 3
    assert api.client.get("/api/v1/messages/search", params={"attachment": "xyz"},
                          headers=headers).status_code == 400
    assert api.client.get("/api/v1/messages/search", params={"since": "2026-03-02T10:00:00"},
                          headers=headers).json()["detail"] == "since needs a timezone"
    assert api.client.get("/api/v1/messages/search", params={"cursor": "bogus"}, headers=headers).status_code == 400


def test_show_and_raw(api: Api) -> None:
    archive_id = archived(api)
    headers = api.key("messages:read")
    shown = api.client.get(f"/api/v1/messages/{archive_id}", headers=headers).json()
    assert shown["indicators"]["url_host"] == ["pay.evil-host.test"]
    assert set(shown["indicators"]["domain"]) == {"evil.test", "evil-host.test"}
    raw = api.client.get(f"/api/v1/messages/{archive_id}/raw", headers=headers)
    assert raw.status_code == 200 and raw.content == RAW and raw.headers["content-type"] == "message/rfc822"
    assert raw.headers["content-disposition"].startswith("attachment;")
    assert api.client.get("/api/v1/messages/999/raw", headers=headers).status_code == 404


def test_removal_by_id_and_by_query_with_the_removal_log(api: Api) -> None:
    kept = archived(api, RAW.replace(b"evil-host", b"fine-host"), ref="ac01")
    single = archived(api, ref="ac02", hold=True)
    by_query = archived(api, RAW.replace(b"a1@", b"a9@"), ref="ac03")
    headers = api.key("messages:delete", name="soar")
    removed = api.client.delete(f"/api/v1/messages/{single}", headers=headers).json()
    assert removed["removed"] == 1 and removed["quarantine_deleted"] == 1
    assert quarantine.list_held(api.engine).items == []
    assert api.client.delete(f"/api/v1/messages/{single}", headers=headers).status_code == 404
    assert api.client.delete("/api/v1/messages", headers=headers).status_code == 400  # no criteria: refused
    matched = api.client.delete("/api/v1/messages", params={"url_host": "pay.evil-host.test"}, headers=headers).json()
    assert matched["removed"] == 1
    assert archive.get(api.engine, by_query) is None and archive.get(api.engine, kept) is not None
    log = api.client.get("/api/v1/logs/removals", headers=api.key("read:logs")).json()["items"]
    assert [(e["who"], e["count"], e["query"]) for e in log] == [
        ("apikey:soar", 1, {"url_host": "pay.evil-host.test"}), ("apikey:soar", 1, {"ids": [single]})]
    only_soar = api.client.get("/api/v1/logs/removals", params={"who": "apikey:nobody"},
                               headers=api.key("messages:read")).json()
    assert only_soar["items"] == []
