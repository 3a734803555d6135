"""Fixtures for the lookalike watch: a real DNS server (Knot) on loopback acting for the suffix zones, a real
SMTP server (aiosmtpd) and a small HTTP server receiving notifications, all on free loopback ports.

The organisation (``ORG_TOML``) owns marlowfenwick.co.uk and mfinstruments.com; its partners are Castlegate
Polymers (castlegatepolymers.co.uk, castlegate-polymers.com) and Ledgerline (ledgerline.io). Knot serves:

- ``co.uk.``, ``com.``, ``io.``: suffix zones with nothing registered (NXDOMAIN), plus one zone per registered
  lookalike (``REGISTERED``): a homoglyph with MX that a domain blocklist lists, one with only an A record, a
  TLD swap, a Unicode homoglyph (punycode), a combosquat, and a partner's typo;
- ``cm.``: a wildcard zone (``*.cm`` has A and MX), with marlowfenwick.cm registered under it;
- ``net.``: a zone Knot cannot load, so every name in it answers SERVFAIL;
- ``test.``: the domain blocklist ``dbl.test``.

``later_dns`` is a second server with the state of a later day: marlowfenwik.co.uk is registered too, and
marlowfenwlck.co.uk has gained MX. ``blackhole`` never answers (timeouts); ``probe_dropper`` forwards to Knot
but never answers the watch's wildcard probes. Nothing here asks the machine's resolver.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from auth.dnsserver import Blackhole, KnotServer, Record, free_port, knotd_path

from mailwarden.config import Settings
from mailwarden.domains.watch import PROBE_PREFIX
from mailwarden.store import Store

OWN = ("marlowfenwick.co.uk", "mfinstruments.com")
IDN_LOOKALIKE = "xn--mfnstruments-2ok.com"  # mfіnstruments.com, with a Cyrillic і
CONTACTS = ("accounts@castlegatepolymers.co.uk", "lucy.brennan@castlegatepolymers.co.uk", "billing@ledgerline.io")
WEBHOOK_SECRET_ENV = "MW_TEST_WEBHOOK_SECRET"

ORG_TOML = """
[organization]
name = "Marlow Fenwick Instruments Ltd"
domains = ["marlowfenwick.co.uk", "mfinstruments.com"]

[[partners]]
name = "Castlegate Polymers Ltd"
domains = ["castlegatepolymers.co.uk", "castlegate-polymers.com"]
contacts = ["accounts@castlegatepolymers.co.uk", "lucy.brennan@castlegatepolymers.co.uk"]

[[partners]]
name = "Ledgerline Software Ltd"
domains = ["ledgerline.io"]
contacts = ["billing@ledgerline.io"]

[[auth.dnsbl]]
zone = "dbl.test"
kind = "domain"

[watch]
suffixes = ["com", "co.uk", "cm", "net"]
rate = 5000
concurrency = 64
"""


def _site(domain: str, *, a: str | None = "203.0.113.10", mx: bool = True, aaaa: bool = False) -> list[Record]:
    records: list[Record] = []
    if a:
        records.append((domain, 300, "A", a))
    if aaaa:
        records.append((domain, 300, "AAAA", "2001:db8::10"))
    if mx:
        records += [(domain, 300, "MX", f"10 mail.{domain}."), (f"mail.{domain}", 300, "A", "203.0.113.25")]
    return records


# lookalike -> (imitated domain, MX present)
REGISTERED = {
    "marlowfenvvick.co.uk": ("marlowfenwick.co.uk", True),
    "marlowfenwlck.co.uk": ("marlowfenwick.co.uk", False),
    "marlowfenwick.com": ("marlowfenwick.co.uk", True),
    "marlowfenwick.cm": ("marlowfenwick.co.uk", True),
    "marlowfenwick-billing.co.uk": ("marlowfenwick.co.uk", False),
    IDN_LOOKALIKE: ("mfinstruments.com", True),
    "castlegatepolymer.co.uk": ("castlegatepolymers.co.uk", True),
}
OWN_REGISTERED = sorted(d for d, (of, _) in REGISTERED.items() if of in OWN)


def zones(later: bool = False) -> dict[str, list[Record] | None]:
    found: dict[str, list[Record] | None] = {
        "co.uk": [], "com": [], "io": [], "net": None,
        "cm": [("*.cm", 300, "A", "192.0.2.99"), ("*.cm", 300, "MX", "10 parking.example.")],
        "test": [("marlowfenvvick.co.uk.dbl.test", 300, "A", "127.0.1.2")],
        "marlowfenvvick.co.uk": _site("marlowfenvvick.co.uk"),
        "marlowfenwlck.co.uk": _site("marlowfenwlck.co.uk", mx=later),
        "marlowfenwick.com": _site("marlowfenwick.com", aaaa=True),
        "marlowfenwick.cm": _site("marlowfenwick.cm", a="198.51.100.5"),
        "marlowfenwick-billing.co.uk": _site("marlowfenwick-billing.co.uk", mx=False),
        IDN_LOOKALIKE: _site(IDN_LOOKALIKE),
        "castlegatepolymer.co.uk": _site("castlegatepolymer.co.uk"),
    }
    if later:
        found["marlowfenwik.co.uk"] = _site("marlowfenwik.co.uk")
    return found


def _knot(tmp_path_factory: pytest.TempPathFactory, name: str, later: bool) -> Iterator[str]:
    if knotd_path() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("knotd is required in CI (scripts/test installs the knot package)")
        pytest.skip("knotd not installed (apt-get install knot)")
    with KnotServer(tmp_path_factory.mktemp(name), zones(later)) as server:
        yield server.address


@pytest.fixture(scope="session")
def watch_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of Knot with today's zones."""
    yield from _knot(tmp_path_factory, "watch-knot", later=False)


@pytest.fixture(scope="session")
def later_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of Knot with a later day's zones."""
    yield from _knot(tmp_path_factory, "watch-knot-later", later=True)


@pytest.fixture
def blackhole() -> Iterator[str]:
    with Blackhole() as hole:
        yield hole.address


class ProbeDropper:
    """A loopback UDP forwarder to Knot that never answers the watch's wildcard probes (they time out)."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.socket.getsockname()[1]}"
        self.dropped = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data, client = self.socket.recvfrom(65535)
            except OSError:
                return  # closed
            threading.Thread(target=self._answer, args=(data, client), daemon=True).start()

    def _answer(self, data: bytes, client: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
            if query.question[0].name.labels[0].decode().startswith(PROBE_PREFIX):
                self.dropped += 1
                return
            reply = dns.query.udp(query, self.upstream[0], port=self.upstream[1], timeout=2)
            self.socket.sendto(reply.to_wire(), client)
        except (OSError, dns.exception.DNSException, IndexError):
            return

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def probe_dropper(watch_dns: str) -> Iterator[ProbeDropper]:
    dropper = ProbeDropper(watch_dns)
    try:
        yield dropper
    finally:
        dropper.close()


@pytest.fixture(autouse=True)
def _nothing_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MAILWARDEN_RESOLVER", "MAILWARDEN_RELAY", "MAILWARDEN_DATABASE_URL", "MAILWARDEN_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def org_toml(tmp_path: Path) -> Callable[[str], Path]:
    """Write org.toml (the watch's organisation plus ``extra`` text) and return its path."""

    def write(extra: str = "") -> Path:
        path = tmp_path / "org.toml"
        path.write_text(ORG_TOML + extra, encoding="utf-8")
        return path

    return write


@pytest.fixture
def store(tmp_path: Path, database_url: str) -> Iterator[Store]:
    """A fresh store on each supported database."""
    with Store.open(Settings(data_dir=tmp_path / "data", database_url=database_url)) as opened:
        yield opened


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(Settings.from_env(tmp_path / "data")) as opened:
        yield opened


# --- SMTP and webhook receivers ------------------------------------------------------------------------

@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class Mailbox:
    """An aiosmtpd handler keeping every message it accepts."""

    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.messages.append(Received(envelope.mail_from or "", list(envelope.rcpt_tos),
                                          envelope.original_content or b""))
        return "250 OK"


@dataclass
class SmtpServer:
    address: str
    mailbox: Mailbox


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on a free loopback port."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, server_hostname="relay.test")
    controller.start()
    try:
        yield SmtpServer(f"127.0.0.1:{port}", mailbox)
    finally:
        controller.stop()


@dataclass
class Hook:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookServer:
    url: str
    received: list[Hook]


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    """A small HTTP server on loopback recording every request it gets (and answering 204)."""
    received: list[Hook] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append(Hook("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield WebhookServer(f"http://127.0.0.1:{server.server_address[1]}/hooks/lookalike", received)
    finally:
        server.shutdown()
        server.server_close()
