"""Fixtures for live authentication: a real DNS server (Knot) on loopback with zones written here.

``dns_server`` starts knotd once per session on 127.0.0.1 at a free port, serving:
- ``test.``: SPF records of every kind, DKIM and ARC keys (RSA-2048 and ed25519, generated per session),
  the DMARC table's records (dmarc_cases.py), DNSBL zones ``bl.test`` and ``dbl.test``;
- ``broken.test.``: a zone Knot cannot load, so every name in it answers SERVFAIL;
- ``other.``: a second zone, for CNAMEs that leave the first one;
- ``in-addr.arpa.``: PTR records for the SPF ``ptr`` mechanism.
``blackhole`` is a loopback UDP port that never answers (timeouts). Nothing here uses the machine's resolver.
When knotd is missing the tests fail under CI=true (scripts/test installs it) and are skipped otherwise.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dmarc_cases import records as dmarc_records
from dnsserver import Blackhole, KnotServer, Record, knotd_path

from mailwarden.dns import LiveResolver


@dataclass(frozen=True)
class Keys:
    rsa_private: bytes  # PEM (PKCS#1), as dkimpy signs with it
    rsa_public: str  # base64 SubjectPublicKeyInfo, the p= of the key record
    ed_private: bytes  # base64 seed
    ed_public: str  # base64 raw public key


def _rsa_keys() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(public).decode("ascii")


def _ed_keys() -> tuple[bytes, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(seed), base64.b64encode(public).decode("ascii")


@pytest.fixture(scope="session")
def keys() -> Keys:
    rsa_private, rsa_public = _rsa_keys()
    ed_private, ed_public = _ed_keys()
    return Keys(rsa_private, rsa_public, ed_private, ed_public)


def spf_records() -> list[Record]:
    r: list[Record] = []

    def txt(name: str, text: str) -> None:
        r.append((name, 300, "TXT", text))

    txt("ip4.spf.test", "v=spf1 ip4:192.0.2.0/24 -all")
    txt("ip6.spf.test", "v=spf1 ip6:2001:db8::/32 -all")
    txt("a.spf.test", "v=spf1 a -all")
    r += [("a.spf.test", 300, "A", "192.0.2.10"), ("a.spf.test", 300, "AAAA", "2001:db8::10")]
    txt("acidr.spf.test", "v=spf1 a:host.spf.test/24 a:host.spf.test//64 -all")
    r += [("host.spf.test", 300, "A", "198.51.100.7"), ("host.spf.test", 300, "AAAA", "2001:db8:5::7")]
    txt("mx.spf.test", "v=spf1 mx -all")
    r += [("mx.spf.test", 300, "MX", "10 mail.spf.test."), ("mail.spf.test", 300, "A", "203.0.113.5")]
    txt("include.spf.test", "v=spf1 include:ip4.spf.test ~all")
    txt("include-none.spf.test", "v=spf1 include:nothing-here.spf.test -all")
    txt("redirect.spf.test", "v=spf1 redirect=ip4.spf.test")
    txt("redirect-none.spf.test", "v=spf1 redirect=nothing-here.spf.test")
    txt("exists.spf.test", "v=spf1 exists:%{i}.allow.spf.test -all")
    r.append(("192.0.2.77.allow.spf.test", 300, "A", "127.0.0.2"))
    txt("macro.spf.test", "v=spf1 exists:%{l}.%{ir}.%{v}.%{d2}.m.spf.test -all")
    r.append(("alice.55.2.0.192.in-addr.spf.test.m.spf.test", 300, "A", "127.0.0.2"))
    txt("macro-delim.spf.test", "v=spf1 exists:%{l1r-}.u.spf.test -all")
    r.append(("john.u.spf.test", 300, "A", "127.0.0.2"))
    txt("macro-bad.spf.test", "v=spf1 exists:%{c}.spf.test -all")
    txt("macro-helo.spf.test", "v=spf1 exists:%{h}.helo-ok.spf.test -all")
    r.append(("relay.example.helo-ok.spf.test", 300, "A", "127.0.0.2"))
    txt("ptr.spf.test", "v=spf1 ptr -all")
    r += [("mail.ptr.spf.test", 300, "A", "192.0.2.88")]
    txt("softfail.spf.test", "v=spf1 ~all")
    txt("neutral.spf.test", "v=spf1 ?all")
    r.append(("nospf.spf.test", 300, "A", "192.0.2.1"))
    txt("two.spf.test", "v=spf1 -all")
    txt("two.spf.test", "v=spf1 +all")
    txt("unknown.spf.test", "v=spf1 foo:bar -all")
    txt("badnet.spf.test", "v=spf1 ip4:192.0.2.0/33 -all")
    txt("toomany.spf.test", "v=spf1 " + " ".join(["a"] * 11) + " +all")
    txt("ten.spf.test", "v=spf1 " + " ".join(["a"] * 10) + " +all")
    r += [("toomany.spf.test", 300, "A", "10.9.9.9"), ("ten.spf.test", 300, "A", "10.9.9.9")]
    txt("includes.spf.test", "v=spf1 " + " ".join(f"include:i{n}.spf.test" for n in range(11)) + " +all")
    for n in range(11):
        txt(f"i{n}.spf.test", "v=spf1 -all")
    txt("void.spf.test", "v=spf1 a:v1.spf.test a:v2.spf.test a:v3.spf.test +all")
    txt("void2.spf.test", "v=spf1 a:v1.spf.test mx:v2.spf.test +all")
    txt("loop.spf.test", "v=spf1 include:loop.spf.test -all")
    txt("temp.spf.test", "v=spf1 include:x.broken.test -all")
    txt("mixed-case.spf.test", "V=SPF1 IP4:192.0.2.0/24 -ALL")
    return r


DKIM_HOSTS = ("signer.test", "strict.test", "lists.test", "evil-lists.test", "relay.test")


def key_records(keys: Keys) -> list[Record]:
    r: list[Record] = []
    for domain in DKIM_HOSTS:
        r.append((f"rsa._domainkey.{domain}", 300, "TXT", f"v=DKIM1; k=rsa; p={keys.rsa_public}"))
        r.append((f"ed._domainkey.{domain}", 300, "TXT", f"v=DKIM1; k=ed25519; p={keys.ed_public}"))
        r.append((f"arc._domainkey.{domain}", 300, "TXT", f"v=DKIM1; k=rsa; p={keys.rsa_public}"))
    r.append(("badkey._domainkey.signer.test", 300, "TXT", "v=DKIM1; k=rsa; p=bm90IGEga2V5"))
    r.append(("revoked._domainkey.signer.test", 300, "TXT", "v=DKIM1; k=rsa; p="))
    return r


def policy_records() -> list[Record]:
    """SPF and DMARC of the domains the end-to-end messages use."""
    r: list[Record] = []

    def txt(name: str, text: str) -> None:
        r.append((name, 300, "TXT", text))

    txt("signer.test", "v=spf1 ip4:192.0.2.0/24 -all")
    txt("_dmarc.signer.test", "v=DMARC1; p=reject")
    txt("strict.test", "v=spf1 ip4:192.0.2.0/24 -all")
    txt("_dmarc.strict.test", "v=DMARC1; p=reject; adkim=s; aspf=s")
    txt("lists.test", "v=spf1 ip4:198.51.100.0/24 -all")
    txt("evil-lists.test", "v=spf1 ip4:198.51.100.0/24 -all")
    txt("relay.test", "v=spf1 ip4:198.51.100.0/24 -all")
    txt("acme-corp.test", "v=spf1 ip4:192.0.2.0/24 -all")
    txt("_dmarc.acme-corp.test", "v=DMARC1; p=quarantine")
    txt("nodmarc.test", "v=spf1 ip4:192.0.2.0/24 -all")
    txt("nodkim.test", "v=spf1 ip4:192.0.2.0/24 ~all")
    txt("_dmarc.nodkim.test", "v=DMARC1; p=none")
    # TTL and CNAME behaviour of the resolver
    r.append(("short-ttl.test", 2, "TXT", "short lived"))
    r.append(("alias.test", 300, "CNAME", "ip4.spf.test."))
    r.append(("away.test", 300, "CNAME", "target.other."))
    r.append(("long-txt.test", 300, "TXT", "x" * 300 + "y" * 300))
    return r


def dnsbl_records() -> list[Record]:
    return [
        ("99.2.0.192.bl.test", 300, "A", "127.0.0.2"),
        ("99.2.0.192.bl.test", 300, "A", "127.0.0.4"),
        ("98.2.0.192.bl.test", 300, "A", "127.255.255.254"),  # the list's own error answer
        ("9.9.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test", 300, "A", "127.0.0.3"),
        ("bad-sender.test.dbl.test", 300, "A", "127.0.1.2"),
        ("evil-link.test.dbl.test", 300, "A", "127.0.1.4"),
    ]


def zones(keys: Keys) -> dict[str, list[Record] | None]:
    return {
        "test": spf_records() + key_records(keys) + policy_records() + dmarc_records() + dnsbl_records(),
        "broken.test": None,
        "other": [("target.other", 300, "TXT", "v=spf1 -all")],
        "in-addr.arpa": [("88.2.0.192.in-addr.arpa", 300, "PTR", "mail.ptr.spf.test."),
                         ("89.2.0.192.in-addr.arpa", 300, "PTR", "elsewhere.spf.test.")],
    }


@pytest.fixture(scope="session")
def dns_server(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Iterator[str]:
    """``host:port`` of a Knot DNS server on loopback serving the test zones."""
    if knotd_path() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("knotd is required in CI (scripts/test installs the knot package)")
        pytest.skip("knotd not installed (apt-get install knot)")
    directory: Path = tmp_path_factory.mktemp("knot")
    with KnotServer(directory, zones(keys)) as server:
        yield server.address


@pytest.fixture
def blackhole() -> Iterator[str]:
    """``host:port`` of a loopback UDP port that never answers."""
    with Blackhole() as hole:
        yield hole.address


@pytest.fixture
def resolver(dns_server: str) -> Iterator[LiveResolver]:
    """A fresh live resolver (empty cache) asking only the test server."""
    with LiveResolver(dns_server, timeout=1.0) as live:
        yield live


@pytest.fixture(autouse=True)
def _no_resolver_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILWARDEN_RESOLVER", raising=False)


# --- messages -------------------------------------------------------------------------------------

def message(from_: str = "Chief Executive <ceo@signer.test>", subject: str = "Invoice 2291",
            body: str = "Please pay the attached invoice by Friday.\r\nThanks\r\n",
            headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    lines = [f"From: {from_}", "To: ap@acme-corp.test", f"Subject: {subject}",
             "Date: Mon, 02 Mar 2026 10:00:00 +0000", "Message-ID: <20260302100000.1@signer.test>",
             "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8")


SIGNED_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id"]


def sign(raw: bytes, keys: Keys, domain: str = "signer.test", selector: str = "rsa", ed25519: bool = False) -> bytes:
    """The message with a DKIM-Signature prepended."""
    if ed25519:
        header = dkim.sign(raw, selector.encode(), domain.encode(), keys.ed_private,
                           signature_algorithm=b"ed25519-sha256", include_headers=SIGNED_HEADERS)
    else:
        header = dkim.sign(raw, selector.encode(), domain.encode(), keys.rsa_private, include_headers=SIGNED_HEADERS)
    return bytes(header) + raw


def arc_seal(raw: bytes, keys: Keys, sealer: str, results: str) -> bytes:
    """The message as a forwarder passes it on: its Authentication-Results and a new ARC set on top."""
    with_results = f"Authentication-Results: {sealer}; {results}\r\n".encode() + raw
    arc_set = dkim.arc_sign(with_results, b"arc", sealer.encode(), keys.rsa_private, sealer.encode())
    return b"".join(arc_set) + with_results
