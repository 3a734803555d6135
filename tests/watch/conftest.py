"""Fixtures for the lookalike watch: a real DNS server (Knot) on loopback acting for the suffix zones, a real
SMTP server (aiosmtpd) and a small HTTP server receiving notifications, all on free loopback ports.

The organisation and the zones are in ``watchharness``: ``ORG_TOML`` owns marlowfenwick.co.uk and
mfinstruments.com; its partners are Castlegate Polymers (castlegatepolymers.co.uk, castlegate-polymers.com) and
Ledgerline (ledgerline.io). Knot serves:

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
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from auth.dnsserver import Blackhole, KnotServer, free_port, knotd_path
from watchharness import ORG_TOML, Hook, Mailbox, ProbeDropper, SmtpServer, WebhookServer, zones

from mailwarden.config import Settings
from mailwarden.store import Store


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
