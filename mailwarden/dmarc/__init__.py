"""DMARC reporting and DNS posture: read reports, store them, query them, alert on spoofing, check DNS.

    reports     the parsed reports (aggregate, failure, SMTP TLS) and their parsedmarc-shaped JSON
    extract     raw bytes or a file -> report payloads (plain, gzip, zip, attached to an email), bounded
    aggregate   RFC 7489 / RFC 9990 aggregate XML, streamed (bounded memory whatever the report's size)
    failure     failure (forensic) reports: ARF (RFC 6591) and plain-text-only ones
    tls         SMTP TLS reports (RFC 8460 JSON)
    parser      parse_bytes / parse_path: every report found in some input, or the error that stopped it
    output      the ``dmarc parse`` JSON lines (an aggregate report written once read to its end)
    limits      the bounds on one input (sizes, archive members, records), named in their errors
    settings    thresholds and DKIM selectors: mailwarden/data/dmarc.toml, overridden by [dmarc] in org.toml
    models      the database tables (SQLAlchemy, on the shared Base; created by migration 0004)
    ingest      DmarcIngest.ingest_bytes(raw, source) -> IngestResult: transactional, idempotent
    alerts      new unauthorised senders, failure jumps, forensic spoof evidence -> alerts and indicators
    queries     volumes, pass rates, alignment, dispositions, top failing sources, who sends as us
    imap        poll a mailbox: fetch, ingest, move a message only once its reports are stored
    posture     SPF, DMARC, DKIM, MTA-STS, TLS-RPT and MX of own and partner domains, with what to fix
    schedule    the posture check inside ``serve``: what changed stored as events, weak partners flagged
    notice      a partner's contacts told (once per state) that its DMARC is weak or missing
    mailbox     the gateway's report addresses: their mail is ingested instead of relayed, or kept aside

Importing this package imports nothing else; the command line loads only what a command needs.
"""
