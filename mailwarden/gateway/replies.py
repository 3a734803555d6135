"""The SMTP replies the gateway gives, as named constants (RFC 5321 codes, RFC 3463 enhanced status)."""

from __future__ import annotations

import re

ACCEPTED = "250 2.0.0 OK: queued as {ref}"
RECIPIENT_OK = "250 2.1.5 OK"
SENDER_OK = "250 2.1.0 OK"
REJECTED = "550 5.7.1 {reason}"
RELAY_DENIED = "550 5.7.1 Relaying denied: we accept mail only for our own domains"
BAD_RECIPIENT = "501 5.1.3 Bad recipient address syntax"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from your address, try again later"
SERVER_BUSY = "421 4.3.2 Too many connections, try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"
TEMPORARY_FAILURE = "451 4.3.0 Temporary failure, please try again later"
BARE_NEWLINE = "550 5.5.2 Bare CR or LF in the message data is not allowed (SMTP smuggling protection)"
GREETING_FIRST = "220-{host} ESMTP Mailwarden"  # the first line; the rest follows after the greet pause
EARLY_TALKER = "554 5.5.1 Protocol error: you talked before the greeting"
IMPROPER_PIPELINING = "554 5.5.0 Improper use of SMTP command pipelining: wait for the reply to {command}"
UNKNOWN_COMMAND = '500 5.5.2 Error: command "{command}" not recognized'
TOO_MANY_COMMANDS = "421 4.7.0 Too many commands in one session, closing"
TOO_MANY_JUNK_COMMANDS = "421 4.7.0 Too many commands without a message, closing"
TOO_MANY_UNKNOWN_COMMANDS = "421 4.7.0 Too many unrecognized commands, closing"

_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e]")


def reply_text(text: str, limit: int = 400) -> str:
    """Text safe inside one reply line: printable ASCII only, bounded."""
    return _NOT_PRINTABLE.sub("?", " ".join(text.split()))[:limit]
