"""The zones of the posture tests: ``posture.test``, one domain per situation the posture check names.

Served by Knot (``tests/auth/dnsserver.py``) in ``conftest.posture_dns``; the scheduled-check tests start a
second server with some records changed.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dnsserver import Record


def _rsa_public(bits: int) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode("ascii")


def posture_zones() -> dict[str, list[Record]]:
    """``posture.test``: one domain per situation the posture check names."""
    r: list[Record] = []

    def txt(name: str, text: str) -> None:
        r.append((f"{name}.posture.test" if name else "posture.test", 300, "TXT", text))

    # strong.posture.test: everything right
    txt("strong", "v=spf1 ip4:192.0.2.0/24 include:spf.posture.test -all")
    txt("spf", "v=spf1 ip4:198.51.100.0/24 -all")
    txt("_dmarc.strong", "v=DMARC1; p=reject; rua=mailto:dmarc@strong.posture.test")
    txt("selector1._domainkey.strong", f"v=DKIM1; k=rsa; p={_rsa_public(2048)}")
    txt("_mta-sts.strong", "v=STSv1; id=20261201")
    txt("_smtp._tls.strong", "v=TLSRPTv1; rua=mailto:tls@strong.posture.test")
    r.append(("strong.posture.test", 300, "MX", "10 mx.strong.posture.test."))
    r.append(("mx.strong.posture.test", 300, "A", "192.0.2.25"))
    # weak.posture.test: monitoring only, +all, a short DKIM key, no MTA-STS or TLS-RPT
    txt("weak", "v=spf1 +all")
    txt("_dmarc.weak", "v=DMARC1; p=none")
    txt("mycorp2024._domainkey.weak", f"v=DKIM1; k=rsa; p={_rsa_public(1024)}")
    r.append(("weak.posture.test", 300, "MX", "10 mx.strong.posture.test."))
    # partial.posture.test: quarantine at 25%, unprotected subdomains, SPF near the lookup limit
    txt("partial", "v=spf1 " + " ".join(f"include:i{n}.posture.test" for n in range(9)) + " ~all")
    for n in range(9):
        txt(f"i{n}", "v=spf1 -all")
    txt("_dmarc.partial", "v=DMARC1; p=quarantine; sp=none; pct=25; rua=mailto:d@partial.posture.test")
    r.append(("partial.posture.test", 300, "MX", "10 mx.strong.posture.test."))
    # broken.posture.test: two SPF records, no DMARC
    txt("broken", "v=spf1 -all")
    txt("broken", "v=spf1 ip4:192.0.2.1 -all")
    # toomany.posture.test: 11 lookups
    txt("toomany", "v=spf1 " + " ".join(f"include:i{n % 9}.posture.test" for n in range(11)) + " -all")
    txt("_dmarc.toomany", "v=DMARC1; p=reject; rua=mailto:d@toomany.posture.test")
    # partner.posture.test: no DMARC at all; parked.posture.test: null MX
    txt("partner", "v=spf1 ip4:203.0.113.0/24 -all")
    r.append(("partner.posture.test", 300, "MX", "10 mx.strong.posture.test."))
    r.append(("parked.posture.test", 300, "MX", "0 ."))
    txt("parked", "v=spf1 -all")
    txt("_dmarc.parked", "v=DMARC1; p=reject; rua=mailto:d@strong.posture.test")
    # sub.strong.posture.test inherits strong's record (the organisational domain is posture.test here,
    # so it finds none there): a subdomain without its own record
    r.append(("sub.strong.posture.test", 300, "A", "192.0.2.80"))
    return {"posture.test": r}
