"""Two gateway processes on one PostgreSQL database (a fresh schema) and one data dir, sharing the delivery
queue: mail is sent to both, the next hop is down at first so the entries pile up and both nodes' workers
then claim from the same queue (``FOR UPDATE SKIP LOCKED``), and every message is delivered exactly once."""

from __future__ import annotations

import asyncio
import time
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
from sqlalchemy import func, select

from mailwarden.gateway.archive import ARCHIVE
from mailwarden.gateway.queue import QUEUE
from mailwarden.gateway.server import open_engine

MESSAGES = 300


@pytest.mark.postgres
def test_two_gateways_share_one_postgresql_queue(tmp_path: Path, postgresql_url: str, gw_dns: str) -> None:
    relay_port = free_port()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = serve_env(postgresql_url, relay_port)
    nodes = [Serve(data_dir, org_toml(tmp_path / f"org-{name}.toml", gw_dns, hostname=f"mx-{name}.acme.gw.test",
                                      retry_base=0.3, retry_max=0.6),
                   env, free_port(), free_port()) for name in ("a", "b")]
    sink = CountingSink()
    controller = SinkController(sink, hostname="127.0.0.1", port=relay_port)
    engine = open_engine(postgresql_url)
    try:
        for node in nodes:
            node.start()
        messages = [(n, *load_message(n)) for n in range(MESSAGES)]
        result = asyncio.run(send_all(messages, ports=[node.smtp_port for node in nodes], clients=20, timeout=300))
        assert len(result.accepted) == MESSAGES and result.refused == {}
        with engine.connect() as connection:
            archived = connection.execute(select(func.count()).select_from(ARCHIVE)).scalar_one()
            received_by = {name: connection.execute(  # our Received field names the node that took the message
                select(func.count()).select_from(QUEUE).where(QUEUE.c.prepend.like(f"%by mx-{name}.acme.gw.test%"))
            ).scalar_one() for name in ("a", "b")}
            waiting = connection.execute(select(func.count()).select_from(QUEUE)
                                         .where(QUEUE.c.state.in_(("pending", "delivering")))).scalar_one()
        assert archived == MESSAGES and all(received_by.values()), received_by  # both nodes took mail
        assert waiting > 0  # the next hop is down: the entries wait in the shared queue

        controller.start()  # the next hop comes up: both nodes' workers claim from the one queue
        wait_until_drained(engine, 120)
        deadline = time.monotonic() + 30
        expected = MESSAGES - len(quarantined_ids(MESSAGES))
        while sink.messages < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        outcome = tally(result, sink, engine)
        print(f"two nodes: {outcome.report()}; deliveries by node {dict(sink.by_client)}")
        assert outcome.lost == [] and outcome.duplicates == {} and outcome.unexpected == []
        assert outcome.delivered == expected and outcome.quarantined == len(quarantined_ids(MESSAGES))
        assert sink.messages == expected  # exactly once: not one delivery more
        assert set(sink.by_client) == {"mx-a.acme.gw.test", "mx-b.acme.gw.test"}  # both worked the queue
        with engine.connect() as connection:
            states = dict(connection.execute(select(QUEUE.c.state, func.count()).group_by(QUEUE.c.state)).all())
        assert states == {"delivered": expected}
        for node in nodes:
            assert node.stop() == 0
        spooled = list((data_dir / "spool").glob("*.eml"))
        assert len(spooled) == len(quarantined_ids(MESSAGES))  # only the held messages are still spooled
    finally:
        for node in nodes:
            node.stop()
        engine.dispose()
        controller.stop()
