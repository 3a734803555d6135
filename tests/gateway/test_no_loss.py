"""No loss: ``mailwarden serve`` (a subprocess, SQLite, a real next hop) under load from 20 concurrent SMTP
clients, then the same while it is killed with SIGKILL three times and restarted: every message that got a
250 is delivered downstream or held in quarantine, none is lost; duplicates are counted and reported.

The suite sends 1,000 messages per run (``MAILWARDEN_LOAD_MESSAGES`` changes that); ``python3 bench/gateway.py
--no-loss`` runs the same with 10,000 (see bench/README.md), which takes too long for the suite.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from auth.dnsserver import free_port
from loadrun import (
    CountingSink,
    Serve,
    SinkController,
    load_message,
    org_toml,
    quarantined_ids,
    send_all,
    serve_env,
    tally,
    wait_until_drained,
)

from mailwarden.gateway.server import open_engine

MESSAGES = int(os.environ.get("MAILWARDEN_LOAD_MESSAGES", "1000"))
CLIENTS = 20
KILLS = (0.25, 0.5, 0.75)  # SIGKILL when this share of the messages has been answered


@dataclass
class Rig:
    serve: Serve
    sink: CountingSink
    database_url: str


@pytest.fixture
def rig(tmp_path: Path, sqlite_url: str, gw_dns: str) -> Iterator[Rig]:
    sink = CountingSink()
    relay_port = free_port()
    controller = SinkController(sink, hostname="127.0.0.1", port=relay_port)
    controller.start()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    config = org_toml(tmp_path / "org.toml", gw_dns, learn_batch=500, learn_interval=2.0)
    serve = Serve(data_dir, config, serve_env(sqlite_url, relay_port), free_port(), free_port())
    try:
        yield Rig(serve, sink, sqlite_url)
    finally:
        try:
            serve.stop()
        finally:
            controller.stop()


def _run(rig: Rig, events: list[tuple[float, object]]) -> str:
    messages = [(n, *load_message(n)) for n in range(MESSAGES)]
    result = asyncio.run(send_all(messages, ports=[rig.serve.smtp_port], clients=CLIENTS, timeout=600,
                                  events=events))  # type: ignore[arg-type]
    assert result.refused == {} and len(result.accepted) == MESSAGES, result.errors
    engine = open_engine(rig.database_url)
    try:
        wait_until_drained(engine)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and rig.sink.messages < MESSAGES - len(quarantined_ids(MESSAGES)):
            time.sleep(0.1)
        outcome = tally(result, rig.sink, engine)
    finally:
        engine.dispose()
    assert rig.serve.stop() == 0
    report = (f"{MESSAGES} messages, {CLIENTS} clients, {rig.serve.starts - 1} kills: {outcome.report()}; "
              f"{result.seconds:.1f} s, {len(result.accepted) / result.seconds:.0f} accepted/s, "
              f"retried transactions {sum(result.errors.values())} {dict(result.errors)}")
    print(report)
    assert outcome.lost == [], report
    assert outcome.accepted == MESSAGES and outcome.unexpected == []
    assert outcome.quarantined == len(quarantined_ids(MESSAGES))
    assert outcome.delivered + outcome.quarantined == MESSAGES
    return report


def test_no_message_is_lost_under_load(rig: Rig, record_property: pytest.RecordProperty) -> None:
    rig.serve.start()
    report = _run(rig, [])
    record_property("no_loss", report)
    assert ", 0 duplicated" in report  # nothing was killed: nothing is sent twice


def test_no_message_is_lost_when_the_gateway_is_killed(rig: Rig, record_property: pytest.RecordProperty) -> None:
    rig.serve.start()

    def kill_and_restart() -> None:
        rig.serve.kill()
        time.sleep(0.3)
        rig.serve.start()

    report = _run(rig, [(share, kill_and_restart) for share in KILLS])
    record_property("no_loss_with_kills", report)
    assert rig.serve.starts == 1 + len(KILLS)
    orphaned = list((rig.serve.data_dir / "spool" / "orphaned").glob("*.eml"))
    left = list((rig.serve.data_dir / "spool").glob("*.eml"))
    assert left == [] or all(p.name.startswith(tuple("0123456789abcdef")) for p in left)
    print(f"spool files of unanswered transactions set aside: {len(orphaned)}")
