"""Load against ``mailwarden serve`` subprocesses, for the no-loss and two-node tests and ``bench/gateway.py``.

    serve = Serve(data_dir, config, env, smtp_port, http_port).start()   # waits until it listens
    result = asyncio.run(send_all(messages, ports=[serve.smtp_port], clients=20, stop_after=...))
    serve.kill()   # SIGKILL                     serve.stop()   # SIGTERM, waits
    tally = count_outcomes(result, sink, engine)

Clients behave like a sending MTA: each keeps its connection, and a message whose transaction fails
(connection refused or reset, a timeout, a 4xx) is sent again, after a short pause, until it gets a 250
or a 5xx. So "got a 250" is the client's own record of what the gateway promised, and every message that
got one must turn up downstream or in quarantine. A message sent again after its 250 was lost in a kill
may legitimately turn up twice: duplicates are counted, not failed, in two kinds. Accepted twice: the client
never saw our 250 and sent the message again, so two queue entries (two X-Mailwarden-Delivery-Ids, two
archive rows) carry it; it did not get a 250 twice. Delivered again: one queue entry reached the next hop
twice (the same X-Mailwarden-Delivery-Id), because a kill came between the next hop's 250 and our note of it.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine, func, select

from mailwarden.gateway.archive import ARCHIVE
from mailwarden.gateway.queue import QUARANTINE, QUEUE

LOAD_ID = re.compile(rb"^X-Load-Id: (\d+)\r?$", re.MULTILINE)
DELIVERY_ID = re.compile(rb"^X-Mailwarden-Delivery-Id: (\S+)\r?$", re.MULTILINE)
RCPT = "bob@acme.gw.test"


# --- messages --------------------------------------------------------------------------------------------

def load_message(n: int) -> tuple[str, bytes]:
    """(MAIL FROM, raw) of message n: every tenth one is quarantined (a partner's name and new bank details
    from a stranger's domain), the others are clean mail from a domain whose SPF allows loopback."""
    if n % 10 == 9:
        sender = "info@promo.gw.test"
        lines = ["From: Globex Logistics <info@promo.gw.test>", "Subject: Updated payment details",
                 "Content-Type: text/plain; charset=utf-8", "", "Hello,",
                 f"please note our bank details changed. New IBAN: DE89370400440532013000. Ref {n}.", "Regards"]
    else:
        sender = "alice@good.gw.test"
        lines = ["From: Alice <alice@good.gw.test>", f"Subject: Minutes {n}", "Content-Type: text/plain; charset=utf-8",
                 "", "The minutes from Tuesday are below.", f"Item {n}: agreed.", "Regards"]
    head = [f"To: {RCPT}", f"Message-ID: <load-{n}@{sender.split('@')[1]}>", f"X-Load-Id: {n}",
            "Date: Mon, 02 Mar 2026 10:00:00 +0000", "MIME-Version: 1.0"]
    return sender, ("\r\n".join(head + lines) + "\r\n").encode("utf-8")


def quarantined_ids(total: int) -> set[int]:
    return {n for n in range(total) if n % 10 == 9}


# --- the next hop ----------------------------------------------------------------------------------------

@dataclass
class CountingSink:
    """An aiosmtpd handler counting deliveries per X-Load-Id and per X-Mailwarden-Delivery-Id (and keeping
    nothing else)."""

    counts: Counter[int] = field(default_factory=Counter)
    delivery_ids: Counter[str] = field(default_factory=Counter)
    without_one_delivery_id: int = 0  # copies with no X-Mailwarden-Delivery-Id or more than one
    by_client: Counter[str] = field(default_factory=Counter)  # deliveries per EHLO name (which gateway node)
    messages: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        found = LOAD_ID.search(content)
        delivery = DELIVERY_ID.findall(content.split(b"\r\n\r\n", 1)[0])
        with self.lock:
            self.messages += 1
            self.by_client[str(session.host_name)] += 1
            if found:
                self.counts[int(found.group(1))] += 1
            if len(delivery) == 1:
                self.delivery_ids[delivery[0].decode()] += 1
            else:
                self.without_one_delivery_id += 1
        return "250 OK"


class LongLineSMTP(SMTP):
    line_length_limit = 1 << 24


class SinkController(Controller):
    def factory(self) -> SMTP:
        return LongLineSMTP(self.handler, **self.SMTP_kwargs)


# --- the gateway process ---------------------------------------------------------------------------------

def wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


@dataclass
class Serve:
    """``mailwarden serve`` as a subprocess (its log in ``data_dir/../serve-<port>.log``)."""

    data_dir: Path
    config: Path
    env: dict[str, str]
    smtp_port: int
    http_port: int
    cpus: str | None = None  # taskset CPU list, e.g. "0,1"
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log(self) -> Path:
        return self.data_dir.parent / f"serve-{self.smtp_port}.log"

    def start(self) -> Serve:
        command = [sys.executable, "-m", "mailwarden.cli", "--data-dir", str(self.data_dir), "serve", "--config",
                   str(self.config), "--smtp-listen", f"127.0.0.1:{self.smtp_port}", "--http-listen",
                   f"127.0.0.1:{self.http_port}"]
        if self.cpus:
            command = ["taskset", "-c", self.cpus, *command]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        self.starts += 1
        wait_for_port(self.smtp_port, self.process)
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout: float = 60.0) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise

    @property
    def cpu_seconds(self) -> float:
        """User + system CPU of the process (while it runs: from /proc)."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks


def serve_env(database_url: str, relay_port: int, **extra: str) -> dict[str, str]:
    env = {**os.environ, "MAILWARDEN_DATABASE_URL": database_url, "MAILWARDEN_RELAY": f"127.0.0.1:{relay_port}",
           "MAILWARDEN_LOG_LEVEL": "WARNING", **extra}
    env.pop("MAILWARDEN_RESOLVER", None)
    return env


def org_toml(path: Path, dns: str, **gateway: Any) -> Path:
    settings = {"hostname": "mx.acme.gw.test", "poll_interval": 0.2, "retry_base": 0.5, "retry_max": 2.0,
                "max_connections_per_client": 200, **gateway}
    lines = [f"{key} = {value!r}" if isinstance(value, str) else f"{key} = {value}" for key, value in settings.items()]
    path.write_text(f"""[organization]
name = "Acme"
domains = ["acme.gw.test"]
authserv_id = "mx.acme.gw.test"

[[partners]]
name = "Globex Logistics"
domains = ["globex.gw.test"]

[dns]
resolvers = ["{dns}"]
timeout = 2.0

[gateway]
""" + "\n".join(lines).replace("'", '"') + "\n", encoding="utf-8")
    return path


# --- the clients -----------------------------------------------------------------------------------------

@dataclass
class LoadResult:
    accepted: set[int] = field(default_factory=set)  # got a 250
    refused: dict[int, str] = field(default_factory=dict)  # got a 5xx
    attempts: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, MAIL FROM to the reply to DATA, of 250s
    timings: dict[int, float] = field(default_factory=dict)  # the same, per message
    errors: Counter[str] = field(default_factory=Counter)  # why transactions had to be sent again
    started: float = 0.0
    finished: float = 0.0

    @property
    def seconds(self) -> float:
        return self.finished - self.started

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def median(self) -> float:
        return statistics.median(self.latencies) if self.latencies else 0.0


async def _client(name: int, queue: asyncio.Queue[tuple[int, str, bytes]], ports: list[int], result: LoadResult,
                  deadline: float) -> None:
    smtp: aiosmtplib.SMTP | None = None
    turn = name
    while True:
        try:
            n, sender, raw = queue.get_nowait()
        except asyncio.QueueEmpty:
            break
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"message {n} not accepted before the deadline")
            result.attempts[n] += 1
            try:
                if smtp is None or not smtp.is_connected:
                    port = ports[turn % len(ports)]
                    turn += 1
                    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60, local_hostname="load.gw.test",
                                           start_tls=False)
                    await smtp.connect()
                    await smtp.ehlo()
                began = time.perf_counter()
                await smtp.sendmail(sender, [RCPT], raw)
                result.latencies.append(time.perf_counter() - began)
                result.timings[n] = result.latencies[-1]
                result.accepted.add(n)
                break
            except aiosmtplib.SMTPResponseException as exc:
                if 500 <= exc.code < 600 and not isinstance(exc, aiosmtplib.SMTPServerDisconnected):
                    result.refused[n] = f"{exc.code} {exc.message}"
                    break
                result.errors[f"{exc.code}"] += 1
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                result.errors[type(exc).__name__] += 1
            if smtp is not None:
                smtp.close()
                smtp = None
            await asyncio.sleep(0.05)
    if smtp is not None and smtp.is_connected:
        try:
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError):
            smtp.close()


async def send_all(messages: list[tuple[int, str, bytes]], *, ports: list[int], clients: int = 20,
                   timeout: float = 900.0, events: list[tuple[float, Any]] | None = None,
                   progress: Any = None) -> LoadResult:
    """Send every message (see the module docstring). ``events``: (fraction of messages accepted, callable)
    run in a thread when the load has got that far (the kills)."""
    queue: asyncio.Queue[tuple[int, str, bytes]] = asyncio.Queue()
    for item in messages:
        queue.put_nowait(item)
    result = LoadResult(started=time.monotonic())
    deadline = result.started + timeout
    workers = [asyncio.create_task(_client(i, queue, ports, result, deadline)) for i in range(clients)]
    pending = sorted(events or [], key=lambda e: e[0])
    running: list[asyncio.Task[Any]] = []
    while not all(w.done() for w in workers):
        await asyncio.sleep(0.05)
        done = len(result.accepted) + len(result.refused)
        while pending and done >= pending[0][0] * len(messages):
            _, action = pending.pop(0)
            running.append(asyncio.create_task(asyncio.to_thread(action)))
        if progress is not None:
            progress(done)
    await asyncio.gather(*workers)
    await asyncio.gather(*running)
    result.finished = time.monotonic()
    return result


# --- the outcome -----------------------------------------------------------------------------------------

def wait_until_drained(engine: Engine, seconds: float = 300.0) -> None:
    """Until no queue entry is pending or being delivered."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            left = connection.execute(select(func.count()).select_from(QUEUE)
                                      .where(QUEUE.c.state.in_(("pending", "delivering")))).scalar_one()
        if not left:
            return
        time.sleep(0.2)
    raise AssertionError(f"{left} queue entries still pending after {seconds} s")


@dataclass
class Tally:
    accepted: int
    delivered: int  # accepted messages found downstream at least once
    quarantined: int  # accepted messages found in quarantine at least once
    lost: list[int]
    duplicates: dict[int, int]  # message -> copies beyond the first (downstream and quarantine together)
    unexpected: list[int]  # turned up but never got a 250 (a transaction whose reply was lost)
    # the extra copies, in two kinds (they add up to sum(duplicates.values())):
    accepted_twice: int = 0  # another acceptance: the client never saw our 250 and sent it again (archived twice)
    redelivered: int = 0  # one queue entry delivered again (a repeated X-Mailwarden-Delivery-Id: killed between
    #                       the next hop's 250 and our journal note; the mailbox can drop these by that id)
    bad_delivery_ids: int = 0  # copies downstream without exactly one X-Mailwarden-Delivery-Id

    def report(self) -> str:
        return (f"{self.accepted} accepted: {self.delivered} delivered, {self.quarantined} quarantined, "
                f"{len(self.lost)} lost, {len(self.duplicates)} duplicated ({sum(self.duplicates.values())} extra "
                f"copies: {self.accepted_twice} accepted twice after a lost 250, {self.redelivered} delivered again "
                f"after a kill with the same delivery id), {len(self.unexpected)} kept without a 250 seen by the "
                "client")


def tally(result: LoadResult, sink: CountingSink, engine: Engine) -> Tally:
    def number(message_id: str) -> int:
        return int(message_id.split("-", 1)[1].split("@", 1)[0])

    with engine.connect() as connection:
        held = Counter(number(m) for (m,) in connection.execute(
            select(QUARANTINE.c.message_id).where(QUARANTINE.c.message_id.like("<load-%"))))
        archived = Counter(number(m) for (m,) in connection.execute(
            select(ARCHIVE.c.message_id).where(ARCHIVE.c.message_id.like("<load-%"))))
    with sink.lock:
        delivered = Counter(sink.counts)
        delivery_ids = Counter(sink.delivery_ids)
        bad = sink.without_one_delivery_id
    total = delivered + held
    lost = sorted(n for n in result.accepted if total[n] == 0)
    duplicates = {n: c - 1 for n, c in total.items() if c > 1}
    unexpected = sorted(n for n in total if n not in result.accepted)
    return Tally(len(result.accepted), sum(1 for n in result.accepted if delivered[n]),
                 sum(1 for n in result.accepted if held[n]), lost, duplicates, unexpected,
                 accepted_twice=sum(archived[n] - 1 for n in duplicates if archived[n] > 1),
                 redelivered=sum(c - 1 for c in delivery_ids.values() if c > 1),
                 bad_delivery_ids=bad)
