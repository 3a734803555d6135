"""The inline SMTP gateway: receive, decide inside the SMTP transaction, deliver, hold, log.

    settings.py    GatewaySettings: listen addresses, relay, limits, TLS, retries (flags > env > [gateway])
    smtp.py        aiosmtpd handler hooks that return SMTP replies (named constants), connection limits
    spool.py       durable spool: every message written and fsynced before it is answered
    receive.py     one DATA: spool, live authentication, scan (in an executor), decide, record, reply
    actions.py     what a decision does to the message: our headers, the warn banner, the record it leaves
    banner.py      the warn banner inserted at the top of text and HTML bodies, the rest unchanged
    queue.py       the delivery queue: claims, retries with exponential backoff, expiry, DSNs, the worker
    quarantine.py  held messages: list, show (sanitised), release, delete
    logs.py        Rejection Log and Release Log, with time-range/reason filters and cursor pagination
    events.py      the events outbox (message.scanned, threat.detected)
    server.py      ``serve``: the SMTP listener, the HTTP API and the workers on one event loop
"""
