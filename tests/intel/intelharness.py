"""Helpers of the threat-intel tests: the API app (in-process or served by uvicorn on loopback), a webhook
receiver that checks signatures, a real rsyslog on loopback (TCP and TLS), and a static file server."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from mailwarden.api.app import ApiServices, create_app
from mailwarden.api.keys import create_key
from mailwarden.config import OrgConfig, Partner
from mailwarden.gateway.settings import GatewaySettings
from mailwarden.gateway.spool import Spool
from mailwarden.intel.settings import IntelSettings
from mailwarden.intel.webhooks import verify
from mailwarden.store.blobs import BlobStore

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ORG = OrgConfig(name="Acme Corp", domains=("acme.test",),
                partners=(Partner("Globex Logistics", ("globex-logistics.test",)),))


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


# --- the API ---------------------------------------------------------------------------------------------

@dataclass
class IntelApi:
    client: TestClient
    app: FastAPI
    engine: Engine
    spool: Spool
    blobs: BlobStore
    clock: list[datetime]

    def key(self, *scopes: str, name: str = "tester") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(*scopes, name=name)}"}

    def token(self, *scopes: str, name: str = "tester") -> str:
        return create_key(self.engine, name=name, scopes=scopes, now=NOW)


def build_app(engine: Engine, data_dir: Path, settings: IntelSettings | None = None,
              clock: list[datetime] | None = None, org: OrgConfig = ORG) -> tuple[FastAPI, Spool, BlobStore]:
    spool = Spool(data_dir / "spool").create()
    blobs = BlobStore(data_dir / "archive").create()
    times = clock if clock is not None else [datetime.now(UTC)]
    services = ApiServices(engine=engine, spool=spool, settings=GatewaySettings(relay="127.0.0.1:2526",
                                                                                hostname="mx.acme.test"),
                           authserv_id="mx.acme.test", clock=lambda: times[0], wake=lambda: None, org=org,
                           blobs=blobs, intel=settings or IntelSettings(api_rate=1000, api_burst=1000))
    return create_app(services), spool, blobs


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class LiveServer:
    """An ASGI app served by uvicorn on 127.0.0.1 in a thread of its own."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_tcp_port()
        self.server = _Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="off",
                                             log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, name="live-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AssertionError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


# --- a webhook receiver ------------------------------------------------------------------------------

@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    valid: bool


@dataclass
class WebhookReceiver:
    """Answers each POST with the next status of ``statuses`` (then 204) and checks its signature."""

    secret: bytes
    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        valid = verify(self.secret, headers.get("x-mailwarden-timestamp", ""), body,
                       headers.get("x-mailwarden-signature", ""), time.time())
        with self.lock:
            self.requests.append(Received(headers, body, valid))
            return self.statuses.pop(0) if self.statuses else 204

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(r.body) for r in self.requests]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@contextlib.contextmanager
def webhook_receiver(secret: bytes) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(secret)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = receiver.handle({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def file_server(directory: Path) -> Iterator[str]:
    """A static HTTP server for ``directory`` (a MISP feed as a web server would serve it)."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# --- rsyslog -------------------------------------------------------------------------------------------

def rsyslogd_path() -> str | None:
    return shutil.which("rsyslogd") or next((p for p in ("/usr/sbin/rsyslogd",) if os.access(p, os.X_OK)), None)


@dataclass
class Rsyslog:
    tcp_port: int
    tls_port: int
    ca_file: Path
    output: Path

    def lines(self) -> list[str]:
        if not self.output.exists():
            return []
        return self.output.read_text(encoding="utf-8", errors="replace").splitlines()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.lines()
            if len(found) >= count:
                return found
            time.sleep(0.1)
        raise AssertionError(f"rsyslog wrote {len(self.lines())} lines, expected {count}: {self.lines()}")


RSYSLOG_CONF = """
global(workDirectory="{work}"
       DefaultNetstreamDriverCAFile="{ca}"
       DefaultNetstreamDriverCertFile="{cert}"
       DefaultNetstreamDriverKeyFile="{key}")
module(load="imtcp")
template(name="mwraw" type="string" string="%msgid%|%app-name%|%structured-data%|%msg%\\n")
ruleset(name="mw") {{
    action(type="omfile" file="{output}" template="mwraw")
}}
input(type="imtcp" port="{tcp}" address="127.0.0.1" ruleset="mw")
input(type="imtcp" port="{tls}" address="127.0.0.1" ruleset="mw"
      streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon")
"""


@contextlib.contextmanager
def run_rsyslog(directory: Path) -> Iterator[Rsyslog]:
    """rsyslogd in the foreground with its own config: RFC 5424 over TCP and over TLS into one file."""
    import trustme

    binary = rsyslogd_path()
    assert binary is not None
    work = directory / "work"
    work.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    tcp, tls = free_tcp_port(), free_tcp_port()
    output = directory / "received.log"
    conf = directory / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(work=work, ca=ca_file, cert=cert_file, key=key_file, output=output, tcp=tcp,
                                        tls=tls), encoding="utf-8")
    pidfile = directory / "rsyslogd.pid"
    log = (directory / "rsyslogd.out").open("wb")
    process = subprocess.Popen([binary, "-n", "-f", str(conf), "-i", str(pidfile)], stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        wait_for_port(tcp)
        wait_for_port(tls)
        yield Rsyslog(tcp, tls, ca_file, output)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()
