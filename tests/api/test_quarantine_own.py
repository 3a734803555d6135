"""Per-user quarantine access: a ``quarantine:own`` key, bound to a user's address, lists, previews and
releases that user's held messages only (a release delivers to that user alone); operators and admins see
and act on everything."""

from __future__ import annotations

from pathlib import Path

import pytest
from apiharness import NOW, Api
from sqlalchemy import select
from typer.testing import CliRunner

from mailwarden.api.keys import create_key
from mailwarden.cli import app
from mailwarden.errors import ConfigError
from mailwarden.gateway import logs, quarantine
from mailwarden.gateway.queue import QUEUE

RAW = (b"From: Billing <billing@evil.test>\r\nTo: alice@acme.test, bob@acme.test\r\nSubject: Invoice\r\n"
       b"Message-ID: <o1@evil.test>\r\n\r\nPlease pay.\r\n")


def hold(api: Api, ref: str, recipients: list[str]) -> int:
    api.spool.write(ref, RAW)
    with api.engine.begin() as connection:
        return quarantine.hold(connection, message_ref=ref, message_id=f"<{ref}@evil.test>",
                               blob=api.spool.blob_name(ref), client_ip="192.0.2.1", helo="evil.test",
                               mail_from="billing@evil.test", recipients=recipients, header_from="billing@evil.test",
                               subject="Invoice", verdict="quarantine", score=60, signals=[], auth_results="",
                               spf="pass", dkim="none", dmarc="fail", received_at=NOW)


def test_a_user_sees_and_releases_only_their_own(api: Api) -> None:
    shared = hold(api, "a001", ["Alice@acme.test", "bob@acme.test"])
    carols = hold(api, "a002", ["carol@acme.test"])
    alice = api.key("quarantine:own", name="alice-portal", user="alice@acme.test")

    listed = api.client.get("/api/v1/quarantine", headers=alice).json()
    assert [i["id"] for i in listed["items"]] == [shared]
    assert listed["items"][0]["recipients"] == ["Alice@acme.test"]  # not who else got it
    shown = api.client.get(f"/api/v1/quarantine/{shared}", headers=alice)
    assert shown.status_code == 200 and "Please pay." in shown.json()["preview"]
    assert api.client.get(f"/api/v1/quarantine/{carols}", headers=alice).status_code == 404
    assert api.client.post(f"/api/v1/quarantine/{carols}/release", headers=alice).status_code == 404
    assert api.client.delete(f"/api/v1/quarantine/{shared}", headers=alice).status_code == 403

    released = api.client.post(f"/api/v1/quarantine/{shared}/release", headers=alice)
    assert released.status_code == 200, released.text
    assert released.json()["state"] == "held" and released.json()["recipients"] == ["Alice@acme.test"]
    with api.engine.connect() as connection:
        [entry] = connection.execute(select(QUEUE))
    assert entry.recipients == ["Alice@acme.test"]  # delivered to her alone
    row = quarantine.get(api.engine, shared)
    assert row is not None and row["state"] == "held" and row["recipients"] == ["bob@acme.test"]
    [logged] = logs.list_releases(api.engine).items
    assert logged["who"] == "user:alice@acme.test" and logged["recipients"] == ["Alice@acme.test"]
    assert api.client.get("/api/v1/quarantine", headers=alice).json()["items"] == []  # nothing left for her
    assert api.client.post(f"/api/v1/quarantine/{shared}/release", headers=alice).status_code == 404

    bob = api.key("quarantine:own", name="bob-portal", user="bob@acme.test")
    assert api.client.post(f"/api/v1/quarantine/{shared}/release", headers=bob).json()["state"] == "released"
    assert quarantine.get(api.engine, shared)["state"] == "released"


def test_operators_and_admins_see_and_release_everything(api: Api) -> None:
    first = hold(api, "b001", ["alice@acme.test", "bob@acme.test"])
    second = hold(api, "b002", ["carol@acme.test"])
    for headers in (api.key("quarantine:read"), api.key("admin")):
        listed = api.client.get("/api/v1/quarantine", headers=headers).json()
        assert [i["id"] for i in listed["items"]] == [second, first]
        assert listed["items"][1]["recipients"] == ["alice@acme.test", "bob@acme.test"]
        assert api.client.get(f"/api/v1/quarantine/{second}", headers=headers).status_code == 200
    done = api.client.post(f"/api/v1/quarantine/{first}/release", headers=api.key("quarantine:release")).json()
    assert done["state"] == "released" and done["recipients"] == ["alice@acme.test", "bob@acme.test"]
    assert api.client.delete(f"/api/v1/quarantine/{second}", headers=api.key("admin")).status_code == 204


def test_a_user_key_needs_a_user(api: Api, tmp_path: Path, database_url: str,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="--user"):
        create_key(api.engine, name="x", scopes=["quarantine:own"], now=NOW)
    with pytest.raises(ConfigError, match="not an email address"):
        create_key(api.engine, name="x", scopes=["quarantine:own"], now=NOW, user="alice")
    monkeypatch.setenv("MAILWARDEN_DATABASE_URL", database_url)
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path / "data"), "apikey", "create", "--scope", "quarantine:own"]
    assert runner.invoke(app, base).exit_code == 2
    made = runner.invoke(app, [*base, "--user", "Dave@Acme.test", "--name", "dave"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    hold(api, "c001", ["dave@acme.test"])
    hold(api, "c002", ["erin@acme.test"])
    listed = api.client.get("/api/v1/quarantine", headers={"Authorization": f"Bearer {key}"}).json()
    assert [i["message_id"] for i in listed["items"]] == ["<c001@evil.test>"]
