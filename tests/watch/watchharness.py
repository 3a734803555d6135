"""The lookalike watch's test world: the organisation, the DNS zones Knot serves, and small loopback servers.

The organisation (``ORG_TOML``) owns marlowfenwick.co.uk and mfinstruments.com; its partners are Castlegate
Polymers (castlegatepolymers.co.uk, castlegate-polymers.com) and Ledgerline (ledgerline.io). ``zones()`` is what
Knot serves (see ``conftest.py``); ``ProbeDropper`` forwards to Knot but never answers the watch's wildcard
probes; ``Mailbox`` is an aiosmtpd handler keeping what it accepts; ``Hook`` a request the webhook server got.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.query
from aiosmtpd.smtp import SMTP, Envelope, Session
from auth.dnsserver import Record

from mailwarden.domains.watch import PROBE_PREFIX

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
