"""Polling a mailbox for reports: fetch, store, and move a message only once its reports are stored.

    result = poll(ImapAccount(host, port, user, password), ingest, folder="INBOX",
                  processed_folder="DMARC/Processed", invalid_folder="DMARC/Invalid")

Each message is fetched without marking it read (``BODY.PEEK[]``), given to ``DmarcIngest.ingest_bytes``
(one transaction per report), and only when that returned, with every report stored or already stored,
moved to ``processed_folder`` (``UID MOVE``, or copy, delete and expunge where the server lacks MOVE).
A message holding no readable report is kept aside by the ingest and moved to ``invalid_folder`` (or
left where it is when there is none). A poll that dies between storing and moving stores nothing twice:
the next poll finds the reports already stored and moves the message then.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
from dataclasses import dataclass, field
from typing import Any

from mailwarden.dmarc.ingest import DmarcIngest, IngestResult
from mailwarden.errors import InputError

_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


class ImapError(InputError):
    """Raised when the mailbox cannot be reached, logged into or used (the message says which step)."""


@dataclass(frozen=True)
class ImapAccount:
    host: str
    port: int = 993
    user: str = ""
    password: str = ""
    tls: bool = True  # implicit TLS (IMAPS); False for plain IMAP, with ``starttls`` to upgrade
    starttls: bool = False
    timeout: float = 30.0


@dataclass
class PollResult:
    fetched: int = 0
    moved: int = 0
    invalid: int = 0
    results: list[IngestResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"fetched": self.fetched, "moved": self.moved, "invalid": self.invalid,
                "stored": sum(r.stored for r in self.results),
                "duplicates": sum(r.duplicates for r in self.results),
                "messages": [r.to_dict() for r in self.results]}


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ok(response: tuple[str, Any], what: str) -> Any:
    kind, data = response
    if kind != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace") if data else ""
        raise ImapError(f"IMAP {what} failed: {detail or kind}")
    return data


def connect(account: ImapAccount) -> imaplib.IMAP4:
    try:
        if account.tls:
            client: imaplib.IMAP4 = imaplib.IMAP4_SSL(account.host, account.port, timeout=account.timeout,
                                                      ssl_context=ssl.create_default_context())
        else:
            client = imaplib.IMAP4(account.host, account.port, timeout=account.timeout)
    except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
        raise ImapError(f"cannot connect to {account.host}:{account.port}: {exc}") from exc
    try:
        if account.starttls and not account.tls:
            client.starttls(ssl.create_default_context())
        client.login(account.user, account.password)
    except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
        with contextlib.suppress(OSError):
            client.shutdown()
        raise ImapError(f"cannot log in to {account.host}:{account.port} as {account.user}: {exc}") from exc
    return client


def _ensure_folder(client: imaplib.IMAP4, folder: str) -> None:
    kind, _ = client.create(_quote(folder))
    if kind != "OK":  # it exists already (servers word that differently): check that it can be selected
        _ok(client.status(_quote(folder), "(MESSAGES)"), f"STATUS {folder}")


def _move(client: imaplib.IMAP4, uid: bytes, folder: str) -> None:
    if "MOVE" in client.capabilities:
        _ok(client.uid("MOVE", uid.decode(), _quote(folder)), f"MOVE to {folder}")
        return
    _ok(client.uid("COPY", uid.decode(), _quote(folder)), f"COPY to {folder}")
    _ok(client.uid("STORE", uid.decode(), "+FLAGS.SILENT", r"(\Deleted)"), "STORE \\Deleted")
    if "UIDPLUS" in client.capabilities:
        _ok(client.uid("EXPUNGE", uid.decode()), "UID EXPUNGE")
    else:
        _ok(client.expunge(), "EXPUNGE")


def poll(account: ImapAccount, ingest: DmarcIngest, *, folder: str = "INBOX",
         processed_folder: str = "DMARC/Processed", invalid_folder: str | None = "DMARC/Invalid",
         limit: int | None = None) -> PollResult:
    """One pass over ``folder``; see the module docstring."""
    result = PollResult()
    client = connect(account)
    try:
        _ensure_folder(client, processed_folder)
        if invalid_folder:
            _ensure_folder(client, invalid_folder)
        _ok(client.select(_quote(folder)), f"SELECT {folder}")
        uids = (_ok(client.uid("SEARCH", "UNDELETED"), "SEARCH")[0] or b"").split()
        for uid in uids[:limit] if limit else uids:
            size_data = _ok(client.uid("FETCH", uid.decode(), "(RFC822.SIZE)"), "FETCH size")
            size = _SIZE.search(b" ".join(d if isinstance(d, bytes) else b"" for d in size_data))
            source = f"imap://{account.user}@{account.host}/{folder};UID={uid.decode()}"
            if size and int(size.group(1)) > ingest.limits.max_message_bytes:
                result.invalid += 1
                if invalid_folder:
                    _move(client, uid, invalid_folder)
                continue
            data = _ok(client.uid("FETCH", uid.decode(), "(BODY.PEEK[])"), "FETCH")
            raw = next((part[1] for part in data if isinstance(part, tuple) and len(part) == 2), None)
            if not isinstance(raw, bytes):
                continue  # the message went away meanwhile
            result.fetched += 1
            stored = ingest.ingest_bytes(raw, source)  # committed before anything moves
            result.results.append(stored)
            if stored.ok:
                _move(client, uid, processed_folder)
                result.moved += 1
            else:
                result.invalid += 1
                if invalid_folder:
                    _move(client, uid, invalid_folder)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ImapError(f"IMAP session with {account.host}:{account.port} failed: {exc}") from exc
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            client.logout()
        with contextlib.suppress(OSError):
            client.shutdown()
    return result
