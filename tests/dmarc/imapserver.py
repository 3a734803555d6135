"""A handle on the test IMAP server (started by the ``dovecot`` fixture of conftest.py)."""

from __future__ import annotations

import contextlib
import imaplib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Imap:
    host: str
    port: int
    user: str
    password: str

    @contextlib.contextmanager
    def client(self) -> Iterator[imaplib.IMAP4]:
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            client.login(self.user, self.password)
            yield client
        finally:
            with contextlib.suppress(OSError):
                client.shutdown()

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        with self.client() as client:
            kind, data = client.append(folder, None, None, raw)
            assert kind == "OK", data

    def count(self, folder: str) -> int:
        with self.client() as client:
            kind, data = client.select(f'"{folder}"', readonly=True)
            return int(data[0]) if kind == "OK" else -1


def answers(server: Imap) -> bool:
    """Whether the server lets the user in and opens the inbox (the mail processes work too)."""
    try:
        probe = imaplib.IMAP4(server.host, server.port, timeout=5)
    except OSError:
        return False
    try:
        probe.login(server.user, server.password)
        return probe.select("INBOX")[0] == "OK"
    except (OSError, imaplib.IMAP4.error):
        return False
    finally:
        with contextlib.suppress(OSError):
            probe.shutdown()


def dovecot_path() -> str | None:
    return shutil.which("dovecot") or next((p for p in ("/usr/sbin/dovecot",) if os.access(p, os.X_OK)), None)
