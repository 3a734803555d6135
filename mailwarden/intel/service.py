"""What ``serve`` runs for threat-intel sharing, next to the SMTP listener and the API.

    intel = IntelService(engine, org, settings, context, clock=clock)
    await intel.start(stopping)        # lists loaded into context.intel before the first message
    receiver.on_threat = intel.learn   # quarantine and reject verdicts become indicators and sightings

* **Lists**: ``context.intel`` (what the ``intel`` analyzer checks) is loaded from the store at start and
  reloaded, off the event loop, whenever the store's list version moved (a blocking indicator was created,
  changed or revoked, on any node) or one of the loaded indicators expired; the check is one small query
  every ``[intel] reload_interval`` seconds. A reload swaps in a new object: a scan in flight keeps the one
  it started with.
* **Sinks**: every ``publish_interval`` seconds, new events go to the webhooks (deliveries with retries) and
  to the syslog receivers. A sink that fails keeps its place and tries again next round.
* **Pulls**: each ``[[intel.pull]]`` source every ``interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from mailwarden.config import OrgConfig
from mailwarden.intel import stix, store
from mailwarden.intel.allowlist import AllowList
from mailwarden.intel.learn import learn_from_verdict
from mailwarden.intel.settings import IntelSettings
from mailwarden.store.db import begin_write

log = logging.getLogger("mailwarden.intel")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def backfill_objects(engine: Engine, producer: str, now: datetime) -> int:
    """Publish a first STIX version for indicators that have none (copied in by a migration)."""
    objects = stix.OBJECTS
    indicators = store.INDICATORS
    count = 0
    with begin_write(engine) as connection:
        missing = connection.execute(select(indicators).where(~indicators.c.id.in_(
            select(objects.c.indicator_id).where(objects.c.indicator_id.is_not(None)))).limit(100_000))
        for row in missing:
            store._publish(connection, dict(row._mapping), now, producer)
            count += 1
    return count


class IntelService:
    """Keeps the scan's lists current, publishes to the sinks, pulls the sources (module docstring)."""

    def __init__(self, engine: Engine, org: OrgConfig, settings: IntelSettings, context: Any,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.engine = engine
        self.org = org
        self.settings = settings
        self.context = context  # a pipeline.Context: its ``intel`` is replaced on reload
        self.clock = clock
        self.allow = AllowList.for_org(org, settings.allowlist)
        self.reloads = 0
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def producer(self) -> str:
        return self.org.name or "Mailwarden"

    def load(self) -> None:
        self.context.intel = store.load_lists(self.engine, self.allow, self.clock())
        self.reloads += 1

    async def start(self, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        await asyncio.to_thread(backfill_objects, self.engine, self.producer, self.clock())
        await asyncio.to_thread(self.load)
        self._tasks = [asyncio.create_task(self._reload(stop), name="intel-reload"),
                       asyncio.create_task(self._publish(stop), name="intel-publish")]
        if self.settings.pull:
            self._tasks.append(asyncio.create_task(self._pull(stop), name="intel-pull"))
        return self._tasks

    def learn(self, connection: Connection, decision: Any, now: datetime) -> None:
        """The gateway's hook for quarantine and reject verdicts, inside the decision's transaction (in a savepoint:
        indicators that cannot be recorded are logged and skipped, never a reason to refuse the message)."""
        result = decision.result
        try:
            with connection.begin_nested():
                learn_from_verdict(connection, result.indicators, org=self.org, message_ref=decision.ref,
                                   message_id=decision.message.message_id,
                                   verdict="reject" if decision.rejected else "quarantine", score=result.score,
                                   now=now, result=result, block=self.settings.block_learned, allow=self.allow)
        except Exception:
            log.exception("message %s: its indicators could not be recorded", decision.ref)

    def stale(self) -> bool:
        with self.engine.connect() as connection:
            version = store.lists_version(connection)
        lists = self.context.intel
        expired = lists.expires_at is not None and lists.expires_at <= self.clock()
        return version != lists.version or expired

    async def _reload(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.reload_interval)
            if stop.is_set():
                return
            try:
                if await asyncio.to_thread(self.stale):
                    await asyncio.to_thread(self.load)
                    log.info("block lists reloaded: version %d, %d entries", self.context.intel.version,
                             self.context.intel.size)
            except Exception:
                log.exception("reloading the block lists failed; the old ones stay in force")

    async def publish_once(self) -> dict[str, Any]:
        from mailwarden.intel.syslog import send_events
        from mailwarden.intel.webhooks import run_webhooks

        done: dict[str, Any] = {}
        try:
            done["webhooks"] = await run_webhooks(self.engine, self.settings.webhooks, self.clock)
        except Exception:
            log.exception("webhook round failed")
        for target in self.settings.syslog:
            try:
                done[target.sink] = await send_events(self.engine, target, self.clock)
            except (OSError, TimeoutError) as exc:
                log.warning("syslog %s: %s; retrying next round", target.name, exc)
            except Exception:
                log.exception("syslog %s failed", target.name)
        return done

    async def _publish(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.publish_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.publish_interval)

    async def _pull(self, stop: asyncio.Event) -> None:
        from mailwarden.intel.pull import pull

        due = {source.name: 0.0 for source in self.settings.pull}
        while not stop.is_set():
            for source in self.settings.pull:
                if time.monotonic() < due[source.name]:
                    continue
                due[source.name] = time.monotonic() + source.interval
                try:
                    report = await asyncio.to_thread(pull, self.engine, source, now=self.clock(), allow=self.allow)
                    log.info("pulled %s: %s", source.name, report.to_dict())
                except Exception as exc:
                    log.warning("pulling %s failed: %s", source.name, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(1.0, min(s.interval for s in self.settings.pull)))
