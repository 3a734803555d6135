"""The SMTP side: aiosmtpd handler hooks that return SMTP replies, and the protocol with our limits.

    GatewayHandler(receiver, org, settings)      handle_RCPT, handle_DATA, handle_exception
    GatewaySMTP(handler, limits=..., ...)        aiosmtpd's SMTP with connection limits and long lines

- Recipients: only the organisation's domains (and their subdomains); anything else is ``550 5.7.1``:
  never an open relay. At most ``max_recipients`` per message (``452 4.5.3``, the client sends the rest
  in another transaction).
- Connections: at most ``max_connections`` in all and ``max_connections_per_client`` from one address
  (``421 4.7.0``, then the connection is closed).
- SIZE and PIPELINING are announced in EHLO; SIZE is enforced (aiosmtpd: ``552`` for MAIL FROM SIZE= and DATA).
- Early talkers: the greeting comes in two lines ``greet_pause`` seconds apart (``220-`` first, as Postfix's
  postscreen does); a client that sends anything before the last line is a bot that does not wait for the
  server, and gets ``554 5.5.1`` and the connection is closed.
- Pipelining abuse: PIPELINING (RFC 2920) allows groups of commands, but a group ends with EHLO, HELO, DATA,
  STARTTLS, VRFY, EXPN or NOOP, and without EHLO there are no groups at all. A client that sends more after
  one of those (message data before our 354, commands before the EHLO reply, plaintext after STARTTLS) before
  reading our reply gets ``554 5.5.0`` and the connection is closed, so nothing it sent ahead is taken as
  commands or as a message.
- Command limits per session: ``max_commands`` in all, ``max_junk_commands`` (NOOP, RSET, VRFY, EXPN, HELP,
  HELO/EHLO) between two accepted messages, ``max_unknown_commands`` unrecognised ones; over a limit the
  client gets ``421 4.7.0`` and the connection is closed. (aiosmtpd looks every command up in one table,
  ``SMTP._smtp_methods``: wrapping that lookup is where they are counted.)
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
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from mailwarden.config import OrgConfig
from mailwarden.gateway.receive import Receiver, Transaction
from mailwarden.gateway.replies import (
    BAD_RECIPIENT,
    BARE_NEWLINE,
    EARLY_TALKER,
    GREETING_FIRST,
    IMPROPER_PIPELINING,
    RECIPIENT_OK,
    RELAY_DENIED,
    SERVER_BUSY,
    SHUTTING_DOWN,
    TEMPORARY_FAILURE,
    TOO_MANY_COMMANDS,
    TOO_MANY_CONNECTIONS,
    TOO_MANY_JUNK_COMMANDS,
    TOO_MANY_RECIPIENTS,
    TOO_MANY_UNKNOWN_COMMANDS,
    UNKNOWN_COMMAND,
    reply_text,
)
from mailwarden.gateway.settings import GatewaySettings

log = logging.getLogger("mailwarden.gateway.smtp")
_BARE_NEWLINE = re.compile(rb"\r(?!\n)|(?<!\r)\n")
GROUP_ENDS = frozenset({"EHLO", "HELO", "DATA", "STARTTLS", "VRFY", "EXPN", "NOOP"})  # RFC 2920 section 3.1
JUNK = frozenset({"NOOP", "RSET", "VRFY", "EXPN", "HELP", "HELO", "EHLO"})


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


@dataclass(frozen=True)
class CommandLimits:
    """Per session: commands in all, junk commands between accepted messages, unrecognised commands."""

    max_commands: int = 10_000
    max_junk: int = 100
    max_unknown: int = 5

    @classmethod
    def of(cls, settings: GatewaySettings) -> CommandLimits:
        return cls(settings.max_commands, settings.max_junk_commands, settings.max_unknown_commands)


class _CommandTable(dict[str, Any]):
    """aiosmtpd's command table; every command line is looked up here, so this is where commands are counted."""

    def __init__(self, methods: dict[str, Any], session: GatewaySMTP) -> None:
        super().__init__(methods)
        self._session = session

    def get(self, command: str, default: Any = None) -> Any:
        found = super().get(command, default)
        return found if self._session.in_help else self._session.dispatch(command, found)


class GatewaySMTP(SMTP):
    """aiosmtpd's protocol with connection and command limits, the early-talker and pipelining checks, lines of
    any length, and a registry for shutdown."""

    def __init__(self, handler: Any, *, limits: ConnectionLimits, sessions: set[GatewaySMTP],
                 max_line_length: int, greet_pause: float = 0.0,
                 command_limits: CommandLimits | None = None, **kwargs: Any) -> None:
        self.line_length_limit = max_line_length  # read by SMTP.__init__ for its StreamReader
        self._limits = limits
        self._sessions = sessions
        self._greet_pause = greet_pause
        self._command_limits = command_limits or CommandLimits()
        self._greeted = False
        self._talked_early = False
        self._commands = 0
        self._junk = 0
        self._unknown = 0
        self.in_help = False  # HELP looks commands up in the same table: those lookups are not commands
        super().__init__(handler, **kwargs)
        self._smtp_methods = _CommandTable(self._smtp_methods, self)

    def data_received(self, data: bytes) -> None:
        if not self._greeted:
            self._talked_early = True
        super().data_received(data)

    def _buffered(self) -> int:
        """Bytes the client sent that were not read yet (what it sent ahead of our reply)."""
        return len(getattr(self._reader, "_buffer", b""))

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
            if self._greet_pause > 0 and not await self._patient_client(address):
                return
            self._greeted = True
            await super()._handle_client()  # the last greeting line, then the commands
        finally:
            self._limits.leave(address)
            self._sessions.discard(self)

    async def _patient_client(self, address: str) -> bool:
        """The first greeting line, the pause, and whether the client kept quiet all along."""
        if not self._talked_early:
            await self.push(GREETING_FIRST.format(host=self.hostname))
            await asyncio.sleep(self._greet_pause)
        if not self._talked_early:
            return True
        log.warning("refused an early talker from %s", address)
        await self._refuse(EARLY_TALKER)
        return False

    async def _refuse(self, reply: str) -> None:
        with contextlib.suppress(ConnectionError):
            await self.push(reply)
        if self.transport is not None:
            self.transport.close()

    def dispatch(self, command: str, method: Any) -> Any:
        """The handler for one command line: its own, or one that refuses and closes (see the module docstring)."""
        assert self.session is not None
        limits = self._command_limits
        self._commands += 1
        peer = client_ip(self.session)
        refusal = None
        if self._buffered() and (command in GROUP_ENDS or not self.session.extended_smtp):
            refusal = IMPROPER_PIPELINING.format(command=command)
        elif self._commands > limits.max_commands:
            refusal = TOO_MANY_COMMANDS
        elif method is None:
            self._unknown += 1
            if self._unknown > limits.max_unknown:
                refusal = TOO_MANY_UNKNOWN_COMMANDS
            else:
                return self._unrecognised(command)
        elif command in JUNK:
            self._junk += 1
            if self._junk > limits.max_junk:
                refusal = TOO_MANY_JUNK_COMMANDS
        if refusal is None:
            return method
        log.warning("closing the session with %s: %s", peer, refusal)
        closing = refusal

        async def refuse(arg: str | None) -> None:
            await self._refuse(closing)

        return refuse

    def _unrecognised(self, command: str) -> Any:
        async def answer(arg: str | None) -> None:
            await self.push(UNKNOWN_COMMAND.format(command=reply_text(command, 40).replace('"', "?")))

        return answer

    @syntax("HELP [command]")
    async def smtp_HELP(self, arg: str) -> None:
        self.in_help = True
        try:
            await super().smtp_HELP(arg)
        finally:
            self.in_help = False

    def message_accepted(self) -> None:
        """A message got its 250: junk commands count from zero again (as Postfix's junk command limit)."""
        self._junk = 0

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

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        """aiosmtpd's EHLO reply with PIPELINING (RFC 2920) announced."""
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

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
        reply = await self.receiver.receive(transaction, raw)
        if reply.startswith("250") and isinstance(server, GatewaySMTP):
            server.message_accepted()
        return reply

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session failed: %s: %s", type(error).__name__, error)
        return TEMPORARY_FAILURE
