"""A real DNS server on loopback for tests and benchmarks: Knot DNS serving zones written here.

    with KnotServer(tmp_dir, {"test": records, "broken.test": None}) as server:
        server.address   # "127.0.0.1:PORT"

``records`` are (owner, ttl, type, rdata) tuples; TXT rdata is given as plain text and split into
255-byte strings. A zone given as ``None`` gets a zone file Knot cannot load, so Knot answers SERVFAIL
for every name in it. ``Blackhole`` is a bound UDP socket that never answers (DNS timeouts).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

import dns.exception
import dns.message
import dns.query
import dns.rcode

Record = tuple[str, int, str, str]
SOA_MINIMUM = 60  # the negative TTL of every zone here


def knotd_path() -> str | None:
    return shutil.which("knotd") or next((p for p in ("/usr/sbin/knotd", "/usr/local/sbin/knotd")
                                          if os.access(p, os.X_OK)), None)


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port on 127.0.0.1")


def txt_rdata(text: str) -> str:
    data = text.encode("utf-8")
    chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    quoted = []
    for chunk in chunks:
        escaped = chunk.decode("utf-8").replace("\\", "\\\\").replace('"', '\\"')
        quoted.append(f'"{escaped}"')
    return " ".join(quoted)


def zone_text(origin: str, records: Iterable[Record]) -> str:
    lines = [f"$ORIGIN {origin}.", "$TTL 300",
             f"@ 300 SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 {SOA_MINIMUM}",
             f"@ 300 NS ns.{origin}.", f"ns.{origin}. 300 A 127.0.0.1"]
    for owner, ttl, rtype, rdata in records:
        name = owner if owner.endswith(".") else owner + "."
        value = txt_rdata(rdata) if rtype == "TXT" else rdata
        lines.append(f"{name} {ttl} {rtype} {value}")
    return "\n".join(lines) + "\n"


class KnotServer:
    """knotd in the foreground on 127.0.0.1 at a free port, with the given zones."""

    def __init__(self, directory: Path, zones: Mapping[str, Iterable[Record] | None]) -> None:
        self.directory = directory
        self.zones = zones
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> KnotServer:
        binary = knotd_path()
        if binary is None:
            raise FileNotFoundError("knotd is not installed (apt-get install knot)")
        zones_dir = self.directory / "zones"
        zones_dir.mkdir(parents=True, exist_ok=True)
        (self.directory / "db").mkdir(exist_ok=True)
        for origin, records in self.zones.items():
            text = zone_text(origin, records) if records is not None else "this is not a zone file @@@\n"
            (zones_dir / f"{origin}.zone").write_text(text, encoding="utf-8")
        log = self.directory / "knotd.log"
        for _ in range(5):
            self.port = free_port()
            config = self.directory / "knot.conf"
            config.write_text(self._config(), encoding="utf-8")
            with log.open("wb") as out:
                self.process = subprocess.Popen([binary, "-c", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL)
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError(f"knotd did not start: {log.read_text(errors='replace')[-2000:]}")

    def _config(self) -> str:
        zones = "\n".join(f"  - domain: {origin}" for origin in self.zones)
        return f"""server:
    rundir: "{self.directory}"
    listen: 127.0.0.1@{self.port}
    udp-workers: 2
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{self.directory / 'db'}"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "{self.directory / 'zones'}"
    file: "%s.zone"
    semantic-checks: off
    journal-content: none
    zonefile-sync: -1
zone:
{zones}
"""

    def _wait_ready(self, seconds: float = 10.0) -> bool:
        loaded = next((origin for origin, records in self.zones.items() if records is not None), None)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                reply = dns.query.udp(dns.message.make_query(f"{loaded}.", "SOA"), "127.0.0.1", port=self.port,
                                      timeout=0.2)
                if reply.rcode() == dns.rcode.NOERROR and reply.answer:
                    return True
            except (OSError, dns.exception.DNSException):
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None

    def __enter__(self) -> KnotServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class Blackhole:
    """A UDP socket on 127.0.0.1 that receives queries and never answers them."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.socket.getsockname()[1]}"

    def close(self) -> None:
        self.socket.close()

    def __enter__(self) -> Blackhole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
