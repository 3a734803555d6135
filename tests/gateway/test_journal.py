"""The delivery journal and the delivery id: a delivery the next hop accepted is noted at once, so a process
killed before the database records it does not make it again after the restart; every attempt of a queue
entry carries the same X-Mailwarden-Delivery-Id, so a mailbox can drop the repeat SMTP still allows."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from gwharness import AUTHSERV_ID, GatewayFactory, Recorder, RunningGateway, gateway_settings
from gwmail import RCPT, build, clean, parsed, send
from sqlalchemy import select

from mailwarden.gateway.journal import DeliveryJournal, Notes, parse_notes, replay
from mailwarden.gateway.queue import QUEUE, DeliveryWorker, claim, enqueue, record_journaled
from mailwarden.gateway.server import open_engine
from mailwarden.gateway.spool import Spool, new_ref

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
WRITER = """
import sys, time
from pathlib import Path
from mailwarden.gateway.journal import DeliveryJournal
journal = DeliveryJournal(Path(sys.argv[1])).open()
journal.note(5, "ab", ["a@x.test"])
journal.note(6, "cd", ["b@x.test"])
print("noted", flush=True)
time.sleep(60)
"""
OTHER = "carol@acme.gw.test"


class Applied:
    """An ``apply`` for ``replay`` that keeps what it was given (and can fail like a database that is away)."""

    def __init__(self, fail: bool = False) -> None:
        self.notes: list[Notes] = []
        self.fail = fail

    def __call__(self, notes: Notes) -> None:
        if self.fail:
            raise RuntimeError("database away")
        self.notes.append(dict(notes))


# --- the file: one per process, replayed once its writer is gone ------------------------------------

def test_a_live_writers_journal_is_left_alone_and_a_dead_ones_is_replayed_then_removed(tmp_path: Path) -> None:
    live = DeliveryJournal(tmp_path).open()
    dead = DeliveryJournal(tmp_path).open()
    live.note(1, "aa", ["a@x.test"])
    dead.note(2, "bb", ["b@x.test"])
    dead.note(2, "bb", ["c@x.test"])
    dead.note(3, "cc", [])  # nothing accepted: nothing noted
    dead.close()  # what a SIGKILL does to the process's file: closed, unlocked; the lines stay

    applied = Applied()
    assert replay(tmp_path, applied) == 1
    assert applied.notes == [{(2, "bb"): frozenset({"b@x.test", "c@x.test"})}]
    assert live.path is not None and [p.name for p in tmp_path.iterdir()] == [live.path.name]

    live.note(4, "dd", ["d@x.test"])
    live.close()
    assert replay(tmp_path, applied) == 1
    assert applied.notes[-1] == {(1, "aa"): frozenset({"a@x.test"}), (4, "dd"): frozenset({"d@x.test"})}
    assert list(tmp_path.iterdir()) == []


def test_another_process_journal_is_replayed_only_after_it_was_killed(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE) as writer:
        try:
            assert writer.stdout is not None and writer.stdout.readline() == b"noted\n"
            applied = Applied()
            assert replay(tmp_path, applied) == 0 and applied.notes == []  # alive: its file is its own
            writer.send_signal(signal.SIGKILL)
            writer.wait(10)
        finally:
            writer.kill()
    assert replay(tmp_path, applied) == 1  # what it wrote before the kill is all there
    assert applied.notes == [{(5, "ab"): frozenset({"a@x.test"}), (6, "cd"): frozenset({"b@x.test"})}]
    assert list(tmp_path.iterdir()) == []


def test_a_journal_stays_when_its_replay_cannot_be_committed(tmp_path: Path) -> None:
    journal = DeliveryJournal(tmp_path).open()
    journal.note(7, "ee", ["a@x.test"])
    journal.close()
    with pytest.raises(RuntimeError):
        replay(tmp_path, Applied(fail=True))
    assert journal.path is not None and journal.path.exists()
    assert replay(tmp_path, Applied()) == 1 and not journal.path.exists()


def test_the_own_file_is_skipped_and_a_full_one_rotates_out(tmp_path: Path) -> None:
    journal = DeliveryJournal(tmp_path, rotate_at=64).open()
    first = journal.path
    journal.note(1, "ff", ["someone.with.a.long.address@x.test", "another.long.address@x.test"])  # > 64 bytes
    assert journal.path != first and first is not None and first.exists()
    journal.note(2, "ff", ["a@x.test"])
    applied = Applied()
    assert replay(tmp_path, applied, skip=journal.path) == 1  # the rotated file, unlocked, goes
    assert applied.notes == [{(1, "ff"): frozenset({"someone.with.a.long.address@x.test",
                                                    "another.long.address@x.test"})}]
    assert not first.exists() and journal.path is not None and journal.path.exists()
    journal.close()


def test_a_damaged_line_is_skipped() -> None:
    data = (b'{"id":1,"ref":"aa","to":["a@x.test"]}\n{"id":2,"ref":"bb","to":["b@x\n\n'
            b'{"id":3,"to":["c@x.test"]}\n{"id":4,"ref":"dd","to":["d@x.test"]}\n')  # cut short; no ref
    assert parse_notes(data) == {(1, "aa"): frozenset({"a@x.test"}), (4, "dd"): frozenset({"d@x.test"})}


# --- into the database ---------------------------------------------------------------------------

def test_journaled_recipients_are_recorded_once(tmp_path: Path, database_url: str) -> None:
    spool = Spool(tmp_path / "spool").create()
    ref = new_ref()
    spool.write(ref, clean())
    engine = open_engine(database_url)
    try:
        with engine.begin() as connection:
            entry = enqueue(connection, ref=ref, kind="message", mail_from="a@good.gw.test", recipients=[RCPT, OTHER],
                            destination="127.0.0.1:25", now=NOW, expire_after=3600)
        assert record_journaled(engine, spool, {(entry, ref): frozenset({RCPT})}, NOW) == 1
        assert record_journaled(engine, spool, {(entry, ref): frozenset({RCPT}), (999, ref): frozenset({RCPT})},
                                NOW) == 0  # applied twice: nothing changes; an unknown entry is left alone
        assert record_journaled(engine, spool, {(entry, "0bad"): frozenset({OTHER})}, NOW) == 0  # an id reused
        with engine.connect() as connection:
            row = connection.execute(select(QUEUE).where(QUEUE.c.id == entry)).one()
        assert (row.state, list(row.recipients)) == ("pending", [OTHER]) and spool.exists(ref)
        assert record_journaled(engine, spool, {(entry, ref): frozenset({OTHER})}, NOW) == 1
        with engine.connect() as connection:
            row = connection.execute(select(QUEUE).where(QUEUE.c.id == entry)).one()
        assert (row.state, row.attempts) == ("delivered", 1) and not spool.exists(ref)
    finally:
        engine.dispose()


# --- a kill between the next hop's 250 and the commit ----------------------------------------------

@pytest.mark.parametrize("noted", [True, False], ids=["journaled", "not-journaled"])
def test_a_delivery_noted_before_a_kill_is_not_made_again_after_the_restart(
        downstream: Recorder, start_gateway: GatewayFactory, downstream_port: int, tmp_path: Path,
        database_url: str, noted: bool) -> None:
    settings = gateway_settings(downstream_port)
    spool = Spool(tmp_path / "data" / "spool").create()
    ref = new_ref()
    spool.write(ref, clean())
    engine = open_engine(database_url)
    try:
        with engine.begin() as connection:
            entry_id = enqueue(connection, ref=ref, kind="message", mail_from="alice@good.gw.test", recipients=[RCPT],
                               destination=settings.relay, now=NOW, expire_after=3600)
        [entry] = claim(engine, settings.worker_id, 10, lease=300, now=datetime.now(UTC))
        journal = DeliveryJournal(spool.journal).open() if noted else None
        worker = DeliveryWorker(engine, spool, settings, AUTHSERV_ID, journal=journal)
        outcome = asyncio.run(worker.attempt(entry))  # delivered, and noted; then "killed": never recorded
        assert outcome.delivered == [RCPT] and len(downstream.wait_for(1)) == 1
        if journal is not None:
            journal.close()  # the kill closes the file: its lock goes, its line stays in the page cache
    finally:
        engine.dispose()

    restarted = start_gateway()  # replays the journal, then gives back what this node had claimed
    assert restarted.engine is not None
    deadline = time.monotonic() + 10
    while True:
        with restarted.engine.connect() as connection:
            row = connection.execute(select(QUEUE.c.state, QUEUE.c.attempts).where(QUEUE.c.id == entry_id)).one()
        if row.state == "delivered" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    time.sleep(0.5)  # ten poll intervals: time enough to deliver it again, if it were
    assert row.state == "delivered"
    assert len(downstream.messages) == (1 if noted else 2)  # without the journal: once more (the old window)
    assert not spool.exists(ref)
    owns = list(spool.journal.glob("*.journal"))
    assert len(owns) == 1 and owns[0] == restarted.gateway.journal.path  # the dead process's file is gone


# --- the delivery id -------------------------------------------------------------------------------

def _delivery_ids(data: bytes) -> list[str]:
    return [str(v) for v in parsed(data).get_all("X-Mailwarden-Delivery-Id") or []]


def test_the_delivery_id_is_the_same_on_every_attempt_and_added_once(gateway: RunningGateway,
                                                                    downstream: Recorder) -> None:
    downstream.fail_data.append("451 4.3.0 try later")
    raw = build("Alice <alice@good.gw.test>", "Minutes", "Hello", headers=("X-Mailwarden-Delivery-Id: forged.1",))
    assert send(gateway.smtp_port, "alice@good.gw.test", raw)[0] == 250
    [delivered] = downstream.wait_for(1)
    first_try, second_try = downstream.seen
    assert gateway.engine is not None
    with gateway.engine.connect() as connection:
        [row] = connection.execute(select(QUEUE.c.id, QUEUE.c.message_ref))
    expected = f"{row.message_ref}.{row.id}"
    assert _delivery_ids(first_try) == _delivery_ids(second_try) == [expected]  # the sender's is removed
    assert second_try == delivered.data
    head = delivered.data.split(b"\r\n\r\n", 1)[0]
    assert head.index(b"X-Mailwarden-Delivery-Id: ") < head.index(b"\r\nFrom: Alice")  # prepended, like Received
    assert delivered.data.endswith(raw.replace(b"X-Mailwarden-Delivery-Id: forged.1\r\n", b""))  # rest untouched


def test_every_delivery_has_its_own_id(gateway: RunningGateway, downstream: Recorder) -> None:
    for _ in range(2):  # the same message accepted twice (a client that resent) is two deliveries
        assert send(gateway.smtp_port, "alice@good.gw.test", clean())[0] == 250
    first, second = downstream.wait_for(2)
    assert len(set(_delivery_ids(first.data) + _delivery_ids(second.data))) == 2
    assert os.path.isdir(gateway.gateway.spool.journal)
