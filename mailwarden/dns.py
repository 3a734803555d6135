"""The live DNS resolver: dnspython, asynchronous, cached, bounded, counted.

    resolver = LiveResolver(["127.0.0.1:5353"], timeout=2.0)
    resolver.query("example.org", "TXT")          # sync: the ``Resolver`` seam analyzers use
    await resolver.aquery("example.org", "MX")    # async: the gateway's event loop is never blocked
    resolver.prefetch([("_dmarc.example.org", "TXT")])   # start questions now, read the answers later

Every question goes to the configured resolvers (``host:port``; ``[v6addr]:port`` for IPv6) and nowhere
else. Answers are cached for their TTL (capped at ``max_ttl``); NXDOMAIN and NODATA are cached for the
negative TTL of the zone's SOA (RFC 2308: the smaller of the SOA's TTL and its minimum field);
SERVFAIL and timeouts for ``failure_ttl`` seconds. Identical questions in flight share one query, and at
most ``max_concurrency`` queries are on the wire at once.

Network I/O runs on one event loop in a daemon thread that the resolver owns. The sync ``query`` reads
the cache in the caller's thread (a warm cache costs microseconds) and otherwise waits for that loop, at
most ``deadline`` seconds: it never blocks forever. ``aquery`` awaits the same loop from any other loop.

``configured_resolver(settings)`` is what every command uses: ``MAILWARDEN_RESOLVER`` or the ``[dns]``
section of org.toml, else no DNS at all (an empty ``StaticResolver``) so offline scans stay offline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset

from mailwarden.config import DnsSettings
from mailwarden.errors import ConfigError
from mailwarden.resolver import DnsAnswer, Resolver, StaticResolver

ENV_RESOLVER = "MAILWARDEN_RESOLVER"
NOERROR, NXDOMAIN, SERVFAIL, TIMEOUT = "NOERROR", "NXDOMAIN", "SERVFAIL", "TIMEOUT"
_MAX_CNAME_CHAIN = 8

Question = tuple[str, str]


def parse_server(text: str) -> tuple[str, int]:
    """``host:port``, ``host`` (port 53), ``[v6]:port`` or a bare IPv6 address to (address, port)."""
    text = text.strip()
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"resolver {text!r}: expected [address]:port")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"resolver {text!r}: port must be a number") from None
    if not host or not 0 < number < 65536:
        raise ConfigError(f"resolver {text!r}: expected host:port with a port from 1 to 65535")
    return host, number


def parse_servers(text: str | Sequence[str]) -> tuple[tuple[str, int], ...]:
    """A comma-separated list (``MAILWARDEN_RESOLVER``) or a sequence of ``host:port`` strings."""
    items = text.split(",") if isinstance(text, str) else list(text)
    servers = tuple(parse_server(item) for item in items if item.strip())
    if not servers:
        raise ConfigError("no resolver given: expected host:port[,host:port]")
    return servers


@dataclass
class DnsCounters:
    """What the resolver did: questions asked on the wire, answered from cache, timed out, failed, shared."""

    queries: int = 0
    cache_hits: int = 0
    timeouts: int = 0
    failures: int = 0
    shared: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _key(name: str, rdtype: str) -> Question:
    return name.lower().rstrip("."), rdtype.upper()


def _rdata_text(rdata: Any) -> str:
    kind = rdata.rdtype
    if kind in (dns.rdatatype.A, dns.rdatatype.AAAA):
        return str(rdata.address)
    if kind == dns.rdatatype.TXT:
        return b"".join(rdata.strings).decode("utf-8", "surrogateescape")
    if kind == dns.rdatatype.MX:
        return f"{rdata.preference} {rdata.exchange.to_text(omit_final_dot=True).lower()}"
    if kind in (dns.rdatatype.PTR, dns.rdatatype.CNAME, dns.rdatatype.NS):
        return str(rdata.target.to_text(omit_final_dot=True).lower())
    return str(rdata.to_text())


def _negative_ttl(response: dns.message.Message) -> int | None:
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA:
            return int(min(rrset.ttl, rrset[0].minimum))
    return None


@dataclass(frozen=True)
class _Reply:
    answer: DnsAnswer
    ttl: float
    cname_target: str | None = None  # the chain left the server's data here: ask again for the target


def _reply_from(response: dns.message.Message, name: str, rdtype: str) -> _Reply:
    rcode = response.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return _Reply(DnsAnswer(NXDOMAIN), _negative_ttl(response) or 0)
    if rcode != dns.rcode.NOERROR:
        return _Reply(DnsAnswer(SERVFAIL), 0)
    wanted = dns.rdatatype.from_text(rdtype)
    current = dns.name.from_text(name)
    ttl: float = float("inf")
    for _ in range(_MAX_CNAME_CHAIN + 1):
        found: dns.rrset.RRset | None = None
        cname: dns.rrset.RRset | None = None
        for rrset in response.answer:
            if rrset.name != current:
                continue
            if rrset.rdtype == wanted:
                found = rrset
            elif rrset.rdtype == dns.rdatatype.CNAME and wanted != dns.rdatatype.CNAME:
                cname = rrset
        if found is not None:
            ttl = min(ttl, found.ttl)
            return _Reply(DnsAnswer(NOERROR, tuple(_rdata_text(r) for r in found)), ttl)
        if cname is None:
            break
        ttl = min(ttl, cname.ttl)
        current = cname[0].target
    else:
        return _Reply(DnsAnswer(SERVFAIL), 0)  # a CNAME loop or an overlong chain
    negative = _negative_ttl(response)
    if current != dns.name.from_text(name) and negative is None:
        return _Reply(DnsAnswer(NOERROR), ttl, cname_target=current.to_text(omit_final_dot=True).lower())
    return _Reply(DnsAnswer(NOERROR), min(ttl, negative if negative is not None else 0))


class LiveResolver:
    """A ``Resolver`` that asks real DNS servers; see the module docstring."""

    def __init__(
        self,
        servers: str | Sequence[str],
        *,
        timeout: float = 2.0,
        max_concurrency: int = 64,
        cache_size: int = 100_000,
        max_ttl: float = 86_400,
        failure_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.servers = parse_servers(servers)
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self.cache_size = cache_size
        self.max_ttl = max_ttl
        self.failure_ttl = failure_ttl
        self.counters = DnsCounters()
        self._clock = clock
        self._cache: dict[Question, tuple[float, DnsAnswer]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._inflight: dict[Question, asyncio.Future[DnsAnswer]] = {}
        self._semaphore: asyncio.Semaphore | None = None

    @property
    def deadline(self) -> float:
        """The longest a sync ``query`` waits: every server once, CNAME hops, and room for the queue."""
        return self.timeout * len(self.servers) * 2 + 1.0

    # --- the cache, read from any thread -------------------------------------------------------------

    def cached(self, name: str, rdtype: str) -> DnsAnswer | None:
        key = _key(name, rdtype)
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._cache[key]
                return None
            self.counters.cache_hits += 1
            return entry[1]

    def _store(self, key: Question, answer: DnsAnswer, ttl: float) -> None:
        if answer.status in (SERVFAIL, TIMEOUT):
            ttl = self.failure_ttl
        ttl = min(ttl, self.max_ttl)
        if ttl <= 0 or self.cache_size <= 0:
            return
        with self._lock:
            if len(self._cache) >= self.cache_size:
                now = self._clock()
                for stale in [k for k, (expires, _) in self._cache.items() if expires <= now]:
                    del self._cache[stale]
                while len(self._cache) >= self.cache_size:  # still full: drop the oldest entries
                    del self._cache[next(iter(self._cache))]
            self._cache[key] = (self._clock() + ttl, answer)

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    # --- the Resolver seam (sync) --------------------------------------------------------------------

    def query(self, name: str, rdtype: str) -> DnsAnswer:
        hit = self.cached(name, rdtype)
        if hit is not None:
            return hit
        if threading.current_thread() is self._thread:  # only our own code runs there; never wait on ourselves
            return DnsAnswer(SERVFAIL)
        future = asyncio.run_coroutine_threadsafe(self._resolve(_key(name, rdtype)), self._running_loop())
        try:
            return future.result(timeout=self.deadline)
        except (TimeoutError, concurrent.futures.CancelledError):  # the query itself goes on and is cached
            self.counters.timeouts += 1
            return DnsAnswer(TIMEOUT)

    def prefetch(self, questions: Iterable[tuple[str, str]]) -> None:
        """Start the questions that are not cached yet without waiting for them."""
        loop: asyncio.AbstractEventLoop | None = None
        for name, rdtype in questions:
            if self.cached(name, rdtype) is None:
                loop = loop or self._running_loop()
                asyncio.run_coroutine_threadsafe(self._resolve(_key(name, rdtype)), loop)

    # --- async ---------------------------------------------------------------------------------------

    async def aquery(self, name: str, rdtype: str) -> DnsAnswer:
        hit = self.cached(name, rdtype)
        if hit is not None:
            return hit
        future = asyncio.run_coroutine_threadsafe(self._resolve(_key(name, rdtype)), self._running_loop())
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self.deadline)
        except TimeoutError:
            self.counters.timeouts += 1
            return DnsAnswer(TIMEOUT)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    self._semaphore = asyncio.Semaphore(self.max_concurrency)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=run, name="mailwarden-dns", daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def close(self) -> None:
        """Stop the resolver's loop thread (a later query starts a new one)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            if thread.is_alive():  # on failure the loop stops all the same; what was left is closed with it
                with contextlib.suppress(TimeoutError, concurrent.futures.CancelledError, RuntimeError):
                    asyncio.run_coroutine_threadsafe(_cancel_pending(), loop).result(timeout=5)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            if not thread.is_alive():
                loop.close()

    def __enter__(self) -> LiveResolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- on the resolver's loop ----------------------------------------------------------------------

    async def _resolve(self, key: Question, depth: int = 0) -> DnsAnswer:
        hit = self.cached(*key)
        if hit is not None:
            return hit
        pending = self._inflight.get(key)
        if pending is not None:
            self.counters.shared += 1
            return await asyncio.shield(pending)
        future: asyncio.Future[DnsAnswer] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            answer = await self._fetch(key, depth)
            future.set_result(answer)
            return answer
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody shared it
            raise
        finally:
            del self._inflight[key]

    async def _fetch(self, key: Question, depth: int) -> DnsAnswer:
        name, rdtype = key
        try:
            request = dns.message.make_query(name or ".", rdtype, want_dnssec=False)
        except (dns.exception.DNSException, ValueError):
            return DnsAnswer(NXDOMAIN)  # not a name DNS can carry: no such domain
        request.flags |= dns.flags.RD
        reply: _Reply | None = None
        timed_out = 0
        assert self._semaphore is not None
        async with self._semaphore:
            for host, port in self.servers:
                self.counters.queries += 1
                try:
                    response, _ = await dns.asyncquery.udp_with_fallback(request, host, timeout=self.timeout,
                                                                         port=port)
                except dns.exception.Timeout:
                    timed_out += 1
                    continue
                except (OSError, dns.exception.DNSException, ValueError):
                    continue  # refused, unreachable, malformed: ask the next server
                reply = _reply_from(response, name, rdtype)
                if reply.answer.status != SERVFAIL:
                    break
        if reply is None or reply.answer.status == SERVFAIL:
            answer = DnsAnswer(TIMEOUT if reply is None and timed_out == len(self.servers) else SERVFAIL)
            if answer.status == TIMEOUT:
                self.counters.timeouts += 1
            else:
                self.counters.failures += 1
            self._store(key, answer, self.failure_ttl)
            return answer
        if reply.cname_target is not None and depth < _MAX_CNAME_CHAIN:
            answer = await self._resolve((reply.cname_target, rdtype), depth + 1)
            return answer  # cached under the target's name for the target's TTL
        self._store(key, reply.answer, reply.ttl)
        return reply.answer


# --- what every command uses -----------------------------------------------------------------------

_shared: dict[tuple[object, ...], LiveResolver] = {}
_shared_lock = threading.Lock()


def configured_servers(settings: DnsSettings | None = None) -> tuple[str, ...]:
    """``MAILWARDEN_RESOLVER`` if set, else the ``[dns]`` resolvers of org.toml (possibly none)."""
    env = os.environ.get(ENV_RESOLVER, "").strip()
    if env:
        parse_servers(env)
        return tuple(s.strip() for s in env.split(",") if s.strip())
    return settings.resolvers if settings else ()


def system_servers() -> tuple[str, ...]:
    """The machine's own resolvers (/etc/resolv.conf), for commands that need DNS and were given none."""
    try:
        nameservers = dns.resolver.Resolver().nameservers
    except dns.exception.DNSException as exc:
        raise ConfigError(f"no resolver configured and the system's cannot be read: {exc}") from exc
    return tuple(f"[{ns}]:53" if ":" in str(ns) else f"{ns}:53" for ns in nameservers)


def live_resolver(settings: DnsSettings | None = None, servers: Sequence[str] = ()) -> LiveResolver:
    """A shared live resolver for these settings (one cache and one loop thread per process and config).

    ``servers`` wins over ``MAILWARDEN_RESOLVER``, which wins over ``[dns]``; with none of them, the
    system's resolvers.
    """
    settings = settings or DnsSettings()
    chosen = tuple(servers) or configured_servers(settings) or system_servers()
    key = (chosen, settings.timeout, settings.max_concurrency, settings.cache_size)
    with _shared_lock:
        found = _shared.get(key)
        if found is None:
            found = LiveResolver(chosen, timeout=settings.timeout, max_concurrency=settings.max_concurrency,
                                 cache_size=settings.cache_size)
            _shared[key] = found
        return found


def configured_resolver(settings: DnsSettings | None = None) -> Resolver:
    """The resolver a scan uses: live when one is configured (env or ``[dns]``), else no DNS at all."""
    if configured_servers(settings):
        return live_resolver(settings)
    return StaticResolver()


async def _cancel_pending() -> None:
    """Cancel the queries still in flight and let their sockets close before the loop stops: a loop closed
    with a socket mid-close leaks it (and Python warns about the unclosed transport)."""
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for _ in range(2):  # transports call connection_lost on the next loop iterations
        await asyncio.sleep(0)
