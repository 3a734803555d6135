"""Email authentication evaluated live at the organisation's boundary: SPF, DKIM, ARC, DMARC, DNSBLs.

    spf.py      RFC 7208 check_host (own code: every lookup on our resolver, lookup and void limits)
    dkim.py     RFC 6376 signatures through dkimpy (rsa-sha256, ed25519-sha256)
    arc.py      RFC 8617 chain validation through dkimpy
    dmarc.py    RFC 7489 discovery, alignment, p/sp/pct (own code)
    dnsbl.py    IP and domain blocklists with return-code meanings
    results.py  evaluate() -> AuthVerdict, its RFC 8601 Authentication-Results header, evaluate_async()

Offline scans read the trusted Authentication-Results the boundary wrote (``mailwarden.authresults``);
a message with an SMTP envelope is evaluated here instead (``mailwarden.analyzers.auth``).
"""

from mailwarden.auth.results import AuthVerdict, evaluate, evaluate_async, evaluate_message

__all__ = ["AuthVerdict", "evaluate", "evaluate_async", "evaluate_message"]
