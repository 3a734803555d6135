"""``mailwarden serve``: the SMTP listener, the HTTP API and the delivery worker on one asyncio loop.

    gateway = Gateway(settings=..., org=..., data_dir=..., database_url=...)
    await gateway.start()      # migrate, resume what was pending, listen
    await gateway.stop()       # graceful: stop listening, finish transactions in flight, stop workers
    run(gateway)               # start, wait for SIGTERM or SIGINT, stop (the ``serve`` command)

Besides delivery, the workers prune the archive (``[gateway] archive_days``) and save what the profile learner
learned from delivered mail.

Restart resumes everything pending: queue entries live in the database and their messages in the spool,
deliveries a killed process had noted in its delivery journal but not recorded are recorded first (so they
are not made again), entries this worker had claimed are given back at start-up, and another node's are
claimed again when their lease runs out. Spool files no row refers to belonged to transactions that never
got a 250; they are moved aside (``spool/orphaned``), since their senders retry.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import signal
import socket
import ssl
from collections.abc import Callable, Coroutine, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import Engine, event

from mailwarden.config import OrgConfig
from mailwarden.dmarc.schedule import PostureSchedule
from mailwarden.domains.discovery import as_protected, stored_protected
from mailwarden.domains.watch import lookalikes_in, record_seen_in_mail, watch_periodically
from mailwarden.gateway import archive
from mailwarden.gateway.journal import DeliveryJournal
from mailwarden.gateway.learner import ProfileLearner
from mailwarden.gateway.queue import Clock, DeliveryWorker, referenced_refs, release_claims, replay_journals, utcnow
from mailwarden.gateway.receive import Decision, Receiver, RecipientPolicy
from mailwarden.gateway.settings import GatewaySettings
from mailwarden.gateway.smtp import CommandLimits, ConnectionLimits, GatewayHandler, GatewaySMTP
from mailwarden.gateway.spool import Spool
from mailwarden.intel.service import IntelService
from mailwarden.intel.settings import IntelSettings
from mailwarden.pipeline import Context
from mailwarden.profiles import Profiles
from mailwarden.resolver import Resolver
from mailwarden.signals import load_scoring
from mailwarden.store.blobs import BlobStore
from mailwarden.store.db import make_engine
from mailwarden.store.migrate import upgrade

log = logging.getLogger("mailwarden.gateway")
ORPHAN_AGE = 600.0  # seconds: a spool file older than this with no row is an abandoned transaction


def _sqlite_full_sync(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA synchronous=FULL")  # a commit is on disk before the 250 that follows it
    finally:
        cursor.close()


def open_engine(database_url: str) -> Engine:
    """The gateway's engine, migrated; on SQLite every commit is synced (the 250 promises durability)."""
    engine = make_engine(database_url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_full_sync)
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


WATCH_START_DELAY = 60.0  # seconds after start before the first lookalike watch run


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s failed", task.get_name(), exc_info=task.exception())


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: the gateway owns SIGTERM and stops everything in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Gateway:
    """Everything ``serve`` runs, in one process (see the module docstring)."""

    def __init__(self, *, settings: GatewaySettings, org: OrgConfig, data_dir: Path, database_url: str,
                 resolver: Resolver | None = None, profiles: Profiles | None = None, clock: Clock = utcnow,
                 policy: RecipientPolicy | None = None, intel: IntelSettings | None = None) -> None:
        self.settings = settings.validate()
        self.intel_settings = intel or IntelSettings()  # [intel]: sinks, pulls, list reloads
        self.intel: IntelService | None = None
        self.org = org
        self.data_dir = data_dir
        self.database_url = database_url
        self.clock = clock
        self.policy = policy
        self._resolver = resolver
        self._profiles = profiles
        self.spool = Spool(data_dir / "spool")
        self.blobs = BlobStore(data_dir / "archive")
        self.learner: ProfileLearner | None = None
        self.limits = ConnectionLimits(settings.max_connections, settings.max_connections_per_client)
        self.sessions: set[GatewaySMTP] = set()
        self.stopping = asyncio.Event()
        self.engine: Engine | None = None
        self.receiver: Receiver | None = None
        self.worker: DeliveryWorker | None = None
        self.journal: DeliveryJournal | None = None
        self.posture: PostureSchedule | None = None  # [dmarc]: the scheduled posture check
        self.smtp_port = 0
        self.http_port = 0
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._io_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._db_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._smtp_server: asyncio.AbstractServer | None = None
        self._api: _ApiServer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def authserv_id(self) -> str:
        return self.org.authserv_id or self.settings.server_name

    def _tls_context(self) -> ssl.SSLContext | None:
        if not self.settings.tls_cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.settings.tls_cert, self.settings.tls_key)
        return context

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.spool.create()
        self.blobs.create()
        self.engine = engine = await asyncio.to_thread(open_engine, self.database_url)
        worker_id = self.settings.worker_id
        # before anything is claimed: what killed processes delivered but did not record is not delivered again
        await asyncio.to_thread(replay_journals, engine, self.spool, self.clock())
        self.journal = DeliveryJournal(self.spool.journal).open()
        resumed = await asyncio.to_thread(release_claims, engine, worker_id, self.clock())
        orphans = self.spool.sweep(await asyncio.to_thread(referenced_refs, engine),
                                   older_than=0.0 if engine.dialect.name == "sqlite" else ORPHAN_AGE)
        if resumed or orphans:
            log.info("resumed %d claimed deliveries; %d unanswered spool files set aside", resumed, len(orphans))
        resolver = self._resolver
        if resolver is None:
            from mailwarden.dns import live_resolver

            resolver = live_resolver(self.org.dns)
        profiles = self._profiles
        if profiles is None:
            from mailwarden.store.store import Store

            profiles = await asyncio.to_thread(Store(engine).load_profiles)
        protected = await asyncio.to_thread(lambda: as_protected(stored_protected(engine)))  # `domains suggest`
        context = Context(org=self.org, scoring=load_scoring(self.org.scoring), profiles=profiles, resolver=resolver,
                          protected=protected)
        await asyncio.to_thread(lambda: context.domain_index)  # built once, before the first message
        self._executor = concurrent.futures.ThreadPoolExecutor(self.settings.scan_workers,
                                                               thread_name_prefix="mailwarden-scan")
        self._io_executor = concurrent.futures.ThreadPoolExecutor(self.settings.io_workers,
                                                                  thread_name_prefix="mailwarden-io")
        writers = 1 if engine.dialect.name == "sqlite" else self.settings.io_workers  # SQLite: one writer at a time
        self._db_executor = concurrent.futures.ThreadPoolExecutor(writers, thread_name_prefix="mailwarden-db")
        self.worker = DeliveryWorker(engine, self.spool, self.settings, self.authserv_id, self.clock,
                                     db_executor=self._db_executor, journal=self.journal)
        worker = self.worker
        self.learner = ProfileLearner(engine, context, batch=self.settings.learn_batch,
                                      interval=self.settings.learn_interval)
        self.receiver = Receiver(engine=engine, spool=self.spool, org=self.org, context=context, resolver=resolver,
                                 settings=self.settings, executor=self._executor, clock=self.clock,
                                 on_enqueued=worker.wake.set, policy=self.policy, blobs=self.blobs,
                                 learner=self.learner, io_executor=self._io_executor,
                                 db_executor=self._db_executor)
        self.intel = IntelService(engine, self.org, self.intel_settings, context, clock=self.clock)
        self._tasks += await self.intel.start(self.stopping)  # block lists loaded before the first message
        self.receiver.on_threat = self._threat_hook(engine, loop)
        handler = GatewayHandler(self.receiver, self.org, self.settings)
        tls = self._tls_context()
        settings = self.settings

        def protocol() -> GatewaySMTP:
            return GatewaySMTP(handler, limits=self.limits, sessions=self.sessions,
                               max_line_length=settings.max_line_length, data_size_limit=settings.max_message_size,
                               greet_pause=settings.greet_pause, command_limits=CommandLimits.of(settings),
                               enable_SMTPUTF8=True, hostname=settings.server_name, ident="Mailwarden",
                               tls_context=tls, timeout=settings.smtp_timeout, loop=loop)

        smtp_socket = listening_socket(*settings.smtp_address)
        self.smtp_port = smtp_socket.getsockname()[1]
        self._smtp_server = await loop.create_server(protocol, sock=smtp_socket)
        self._tasks.append(asyncio.create_task(worker.run(self.stopping), name="delivery"))
        self._tasks.append(asyncio.create_task(self._sweep_orphans(), name="spool-sweep"))
        self._tasks.append(asyncio.create_task(self.learner.run(self.stopping), name="learner"))
        self._tasks.append(asyncio.create_task(self._prune_archive(), name="archive-prune"))
        self._start_dmarc(engine, resolver)
        self._start_watch(engine, resolver)
        await self._start_api(loop)
        log.info("SMTP on %s:%d, API on %s:%d, relay %s", settings.smtp_address[0], self.smtp_port,
                 settings.http_address[0], self.http_port, settings.relay)

    async def _start_api(self, loop: asyncio.AbstractEventLoop) -> None:
        from mailwarden.api.app import ApiServices, create_app

        assert self.engine is not None and self.worker is not None
        worker = self.worker

        def wake() -> None:
            loop.call_soon_threadsafe(worker.wake.set)

        services = ApiServices(engine=self.engine, spool=self.spool, settings=self.settings,
                               authserv_id=self.authserv_id, clock=self.clock, wake=wake, org=self.org,
                               resolver=self.receiver.resolver if self.receiver is not None else None,
                               blobs=self.blobs, intel=self.intel_settings)
        api_socket = listening_socket(*self.settings.http_address)
        self.http_port = api_socket.getsockname()[1]
        config = uvicorn.Config(create_app(services), lifespan="off", log_level="warning", access_log=False)
        self._api = _ApiServer(config)
        self._tasks.append(asyncio.create_task(self._api.serve(sockets=[api_socket]), name="api"))
        while not self._api.started:
            await asyncio.sleep(0.01)
            if self._tasks[-1].done():
                self._tasks[-1].result()
                raise RuntimeError("the HTTP API did not start")

    def _threat_hook(self, engine: Engine, loop: asyncio.AbstractEventLoop
                     ) -> Callable[[Any, Decision, datetime], None]:
        """Quarantine and reject verdicts: indicators (in the decision's transaction), and lookalikes of our own
        or partner domains used in the mail are recorded with the watch's state and partners told, afterwards."""
        intel = self.intel
        relay = self.org.notify.relay or self.settings.relay

        def on_threat(connection: Any, decision: Decision, now: datetime) -> None:
            if intel is not None:
                intel.learn(connection, decision, now)
            seen = lookalikes_in(decision.result)
            if seen:
                loop.call_soon_threadsafe(self._spawn, record_seen_in_mail(engine, self.org, seen, relay=relay),
                                          "lookalike-seen")

        return on_threat

    def _spawn(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(_log_failure)
        self._tasks.append(task)

    def _start_watch(self, engine: Engine, resolver: Resolver) -> None:
        """``[watch]``: the lookalike watch runs inside serve, a minute after start and then every interval."""
        if not hasattr(resolver, "aquery") or self.org.watch.interval <= 0:
            return  # no live DNS (tests, offline): nothing to watch with

        async def later() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=min(WATCH_START_DELAY, self.org.watch.interval))
            if not self.stopping.is_set():
                await watch_periodically(engine, self.org, resolver, self.stopping,  # type: ignore[arg-type]
                                         extra=lambda: as_protected(stored_protected(engine)))

        self._spawn(later(), "lookalike-watch")

    def _start_dmarc(self, engine: Engine, resolver: Resolver) -> None:
        """``[dmarc]``: mail for the report addresses is ingested, not relayed; the posture check runs on."""
        from mailwarden.dmarc.ingest import DmarcIngest
        from mailwarden.dmarc.mailbox import ReportMailbox

        dmarc = self.org.dmarc
        if dmarc.serve.report_addresses and self.receiver is not None:
            ingest = DmarcIngest(engine, self.data_dir, own_domains=self.org.domains, settings=dmarc, clock=self.clock)
            self.receiver.mailbox = ReportMailbox(ingest, self.spool, dmarc.serve.report_addresses)
        relay = self.org.notify.relay or self.settings.relay  # partner notices: [notify] relay, else our next hop
        self.posture = PostureSchedule(engine, self.org, resolver, now=self.clock, relay=relay)
        self._tasks.append(asyncio.create_task(self.posture.run(self.stopping), name="dmarc-posture"))

    async def _sweep_orphans(self) -> None:
        while not self.stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=ORPHAN_AGE)
            if self.stopping.is_set() or self.engine is None:
                return
            try:
                self.spool.sweep(await asyncio.to_thread(referenced_refs, self.engine), older_than=ORPHAN_AGE)
            except Exception:
                log.exception("spool sweep failed")

    async def _prune_archive(self) -> None:
        """Retention: every ``archive_prune_interval`` seconds (and at start), what is older than ``archive_days``;
        at start also the blobs of transactions a killed process never recorded."""
        if self.engine is not None:
            try:
                swept = await asyncio.to_thread(archive.sweep_orphans, self.engine, self.blobs)
            except Exception:
                log.exception("sweeping unreferenced archive blobs failed")
            else:
                if swept:
                    log.info("removed %d archive blobs of unrecorded transactions", swept)
        while not self.stopping.is_set():
            if self.engine is None:
                return
            now = self.clock()
            try:
                removed = await asyncio.to_thread(archive.prune, self.engine, self.blobs, now=now,
                                                  older_than=now - timedelta(days=self.settings.archive_days))
                await asyncio.to_thread(self.blobs.sweep_tmp)
            except Exception:
                log.exception("archive pruning failed")
            else:
                if removed.count:
                    log.info("archive retention removed %d messages", removed.count)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=self.settings.archive_prune_interval)

    async def stop(self) -> None:
        """Stop listening, let transactions in flight finish (up to the grace time), then stop the rest."""
        self.limits.closing = True
        if self._smtp_server is not None:
            self._smtp_server.close()
        deadline = asyncio.get_running_loop().time() + self.settings.shutdown_grace
        while self.receiver is not None and self.receiver.in_flight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for session in list(self.sessions):
            session.close_for_shutdown()
        self.stopping.set()
        if self._api is not None:
            self._api.should_exit = True
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.settings.shutdown_grace + 5)
        for task in self._tasks:
            task.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        for pool in (self._io_executor, self._db_executor):
            if pool is not None:
                pool.shutdown(wait=True)  # writes in flight finish (they were answered or will be)
        if self.journal is not None:
            self.journal.close()  # every delivery is recorded or given back: our journal is replayed and goes
            if self.engine is not None:
                try:
                    await asyncio.to_thread(replay_journals, self.engine, self.spool, self.clock())
                except Exception:  # it stays for the next start
                    log.exception("replaying the delivery journal at shutdown failed")
        if self.engine is not None:
            self.engine.dispose()
        log.info("stopped")


async def run(gateway: Gateway) -> None:
    """Start, serve until SIGTERM or SIGINT, stop gracefully."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await gateway.start()
        await stop.wait()
    finally:
        await gateway.stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
