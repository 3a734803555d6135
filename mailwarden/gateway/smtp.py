"""The SMTP side: aiosmtpd handler hooks that return SMTP replies, and the protocol with our limits.

    GatewayHandler(receiver, org, settings)      handle_RCPT, handle_DATA, handle_exception
    GatewaySMTP(handler, limits=..., ...)        aiosmtpd's SMTP with connection limits and long lines

- Recipients: only the organisation's domains (and their subdomains); anything else is ``550 5.7.1``:
  never an open relay. At most ``max_recipients`` per message (``452 4.5.3``, the client sends the rest
  in another transaction).
- Connections: at most ``max_connections`` in all and ``max_connections_per_client`` from one address
  (``421 4.7.0``, then the connection is closed).
- SIZE is announced in EHLO and enforced (aiosmtpd: ``552`` for MAIL FROM SIZE= and for DATA).
- Long lines: real mail breaks RFC 5321's 1,000-octet limit often; like Postfix we take lines of any
  length (up to the message size) instead of refusing the message.
- SMTP smuggling: the end of data is only ``<CRLF>.<CRLF>`` (aiosmtpd reads lines up to CRLF), and data
  with a bare CR or LF anywhere is refused (``550 5.5.2``), so no ``<LF>.<LF>`` or ``<LF>.<CRLF>`` trick
  can hide a second message that a next hop would split off.
- DATA: see ``receive.py``. An exception anywhere in a hook answers ``451 4.3.0``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
from collections import Counter
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailwarden.config import OrgConfig
from mailwarden.gateway.receive import Receiver, Transaction
from mailwarden.gateway.replies import (
    BAD_RECIPIENT,
    BARE_NEWLINE,
    RECIPIENT_OK,
    RELAY_DENIED,
    SERVER_BUSY,
    SHUTTING_DOWN,
    TEMPORARY_FAILURE,
    TOO_MANY_CONNECTIONS,
    TOO_MANY_RECIPIENTS,
)
from mailwarden.gateway.settings import GatewaySettings

log = logging.getLogger("mailwarden.gateway.smtp")
_BARE_NEWLINE = re.compile(rb"\r(?!\n)|(?<!\r)\n")


def client_ip(session: Session) -> str:
    """The peer's address, IPv4-mapped IPv6 addresses as IPv4."""
    peer = session.peer
    host = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "")
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def has_bare_newline(data: bytes) -> bool:
    return _BARE_NEWLINE.search(data) is not None


class ConnectionLimits:
    """Open SMTP connections, in all and per client address."""

    def __init__(self, max_total: int, max_per_client: int) -> None:
        self.max_total = max_total
        self.max_per_client = max_per_client
        self.total = 0
        self.by_client: Counter[str] = Counter()
        self.closing = False

    def admit(self, address: str) -> str | None:
        """None when the connection may go on, else the reply to close it with."""
        if self.closing:
            return SHUTTING_DOWN
        if self.total >= self.max_total:
            return SERVER_BUSY
        if self.by_client[address] >= self.max_per_client:
            return TOO_MANY_CONNECTIONS
        self.total += 1
        self.by_client[address] += 1
        return None

    def leave(self, address: str) -> None:
        self.total -= 1
        self.by_client[address] -= 1
        if self.by_client[address] <= 0:
            del self.by_client[address]


class GatewaySMTP(SMTP):
    """aiosmtpd's protocol with connection limits, lines of any length, and a registry for shutdown."""

    def __init__(self, handler: Any, *, limits: ConnectionLimits, sessions: set[GatewaySMTP],
                 max_line_length: int, **kwargs: Any) -> None:
        self.line_length_limit = max_line_length  # read by SMTP.__init__ for its StreamReader
        self._limits = limits
        self._sessions = sessions
        super().__init__(handler, **kwargs)

    async def _handle_client(self) -> None:
        assert self.session is not None
        address = client_ip(self.session)
        refusal = self._limits.admit(address)
        if refusal is not None:
            log.info("refused a connection from %s: %s", address, refusal)
            await self.push(refusal)
            if self.transport is not None:
                self.transport.close()
            return
        self._sessions.add(self)
        try:
            await super()._handle_client()
        finally:
            self._limits.leave(address)
            self._sessions.discard(self)

    def close_for_shutdown(self) -> None:
        """Say 421 and hang up (the client retries later, elsewhere or after the restart)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        with contextlib.suppress(Exception):  # the peer may be gone already
            self._writer.write(SHUTTING_DOWN.encode("ascii") + b"\r\n")
        transport.close()


class GatewayHandler:
    """aiosmtpd hooks: each returns the SMTP reply for its command."""

    def __init__(self, receiver: Receiver, org: OrgConfig, settings: GatewaySettings) -> None:
        self.receiver = receiver
        self.org = org
        self.settings = settings

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= self.settings.max_recipients:
            return TOO_MANY_RECIPIENTS
        local, at, domain = address.rpartition("@")
        if not at or not local or not domain:
            return BAD_RECIPIENT
        if domain.startswith("[") or not self.org.is_own_domain(domain.rstrip(".")):
            log.info("relay denied for %s from %s", address, client_ip(session))
            return RELAY_DENIED
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return RECIPIENT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        mail_from = envelope.mail_from or ""
        transaction = Transaction(client_ip=client_ip(session), helo=session.host_name or "",
                                  mail_from="" if mail_from == "<>" else mail_from,
                                  recipients=tuple(envelope.rcpt_tos), tls=session.ssl is not None)
        if has_bare_newline(raw):
            log.warning("refused a message with bare CR/LF from %s", transaction.client_ip)
            try:
                await asyncio.to_thread(self.receiver.record_protocol_rejection, transaction, raw,
                                        "bare CR or LF in the message data (SMTP smuggling)")
            except Exception:
                log.exception("cannot write the rejection log")
            return BARE_NEWLINE
        return await self.receiver.receive(transaction, raw)

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session failed: %s: %s", type(error).__name__, error)
        return TEMPORARY_FAILURE
