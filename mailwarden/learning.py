"""``mailwarden learn``: fold past legitimate mail into the stored profiles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from mailwarden.config import OrgConfig, Settings
from mailwarden.message import Message, parse
from mailwarden.sources import read_messages


@dataclass(frozen=True)
class LearnSummary:
    messages: int
    errors: int
    senders: int
    domains: int


def message_date(message: Message) -> datetime | None:
    value = message.header("Date")
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def learn_paths(files: list[Path], org: OrgConfig, settings: Settings) -> LearnSummary:
    from mailwarden.store import Store

    with Store.open(settings) as store:
        profiles = store.load_profiles()
        learned = errors = 0
        for path in files:
            for item in read_messages(path):
                if item.raw is None:
                    errors += 1
                    continue
                message = parse(item.raw, authserv_id=org.authserv_id)
                if profiles.observe(message, message_date(message)):
                    learned += 1
        store.save_profiles(profiles)
    return LearnSummary(learned, errors, len(profiles.senders), len(profiles.domains))
