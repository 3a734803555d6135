"""Scanning files for the CLI, in this process or in worker processes (one Context per process)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mailwarden.config import OrgConfig, Settings, load_org
from mailwarden.message import parse
from mailwarden.pipeline import Context, scan
from mailwarden.sources import RawMessage, read_messages

_context: Context | None = None


def build_context(config: Path | None, settings: Settings) -> Context:
    """The scan context for an org: config, scoring, and the profiles learned into the data dir."""
    from mailwarden.domains.discovery import load_protected_domains
    from mailwarden.store import load_profiles

    org = load_org(config) if config else OrgConfig()
    return Context.for_org(org, profiles=load_profiles(settings), protected=load_protected_domains(settings))


def init_worker(config: Path | None, settings: Settings) -> None:
    global _context
    _context = build_context(config, settings)


def scan_raw(item: RawMessage, context: Context) -> dict[str, Any]:
    """One message to its JSONL row (the contract in DESIGN.md)."""
    if item.raw is None:
        return {"file": item.name, "error": item.error or "unreadable"}
    message = parse(item.raw, authserv_id=context.org.authserv_id)
    result = scan(message, context)
    return {"file": item.name, "message_id": message.message_id, **result.to_dict()}


def scan_file(path: Path) -> list[dict[str, Any]]:
    assert _context is not None, "init_worker() must run first"
    return [scan_raw(item, _context) for item in read_messages(path)]
