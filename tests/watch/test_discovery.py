"""Partner discovery: correspondent domains by volume, and protecting the top ones in the store."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from mailwarden.cli import app
from mailwarden.config import Settings, load_org
from mailwarden.detection import load_detection_data
from mailwarden.domains.discovery import load_protected_domains, protect, stored_protected, suggest_partners
from mailwarden.pipeline import Context
from mailwarden.profiles import Profile, Profiles
from mailwarden.scanner import build_context
from mailwarden.store import Store

DAY = datetime(2026, 3, 1, tzinfo=UTC)
runner = CliRunner()


def learned() -> Profiles:
    """What ``learn`` would have stored: own, partner, free-mail and unknown correspondents."""
    profiles = Profiles()
    volumes = {"marlowfenwick.co.uk": 300, "castlegatepolymers.co.uk": 120, "gmail.com": 90,
               "harbourside-supplies.com": 41, "northgate-metals.co.uk": 12, "quayline.io": 12, "once.example": 1,
               "mail.ledgerline.io": 5}
    for n, (domain, count) in enumerate(volumes.items()):
        profiles.domains[domain] = Profile(kind="domain", key=domain, first_seen=DAY - timedelta(days=90),
                                           last_seen=DAY - timedelta(days=n), count=count)
    for sender in ("ap@harbourside-supplies.com", "jo@harbourside-supplies.com", "kim@quayline.io"):
        profiles.senders[sender] = Profile(kind="sender", key=sender, first_seen=DAY, last_seen=DAY, count=1)
    return profiles


def test_suggestions_leave_out_own_partner_and_free_mail_domains(org_toml: Callable[[str], Path]) -> None:
    org = load_org(org_toml(""))
    found = suggest_partners(learned(), org, load_detection_data().freemail, protected=["quayline.io"])
    assert [(s.domain, s.messages, s.senders, s.protected) for s in found] == [
        ("harbourside-supplies.com", 41, 2, False),
        ("northgate-metals.co.uk", 12, 0, False),  # as many messages as quayline.io, seen more recently
        ("quayline.io", 12, 1, True),
        ("once.example", 1, 0, False),
    ]
    assert [s.domain for s in suggest_partners(learned(), org, [], top=2)] == ["gmail.com", "harbourside-supplies.com"]


def test_protected_domains_are_stored_once(store: Store, org_toml: Callable[[str], Path]) -> None:
    org = load_org(org_toml(""))
    top = suggest_partners(learned(), org, load_detection_data().freemail, top=2)
    assert protect(store.engine, top, DAY) == ["harbourside-supplies.com", "northgate-metals.co.uk"]
    assert protect(store.engine, top, DAY) == []
    assert stored_protected(store.engine) == ["harbourside-supplies.com", "northgate-metals.co.uk"]


def test_suggest_on_the_command_line_and_protect_the_top(tmp_path: Path, org_toml: Callable[[str], Path]) -> None:
    data = tmp_path / "data"
    config = org_toml("")
    settings = Settings.from_env(data)
    assert load_protected_domains(settings) == ()  # no store yet: nothing created
    assert not (data / "mailwarden.db").exists()
    with Store.open(settings) as store:
        store.save_profiles(learned())

    result = runner.invoke(app, ["--data-dir", str(data), "domains", "suggest", "--config", str(config),
                                 "--format", "jsonl", "--top", "3"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["domain"], r["messages"], r["protected"]) for r in rows] == [
        ("harbourside-supplies.com", 41, False), ("northgate-metals.co.uk", 12, False), ("quayline.io", 12, False)]
    assert set(rows[0]) == {"domain", "messages", "senders", "first_seen", "last_seen", "protected"}

    before = build_context(config, settings).domain_index.check("harbourside-supplies-billing.com")
    assert before is None
    result = runner.invoke(app, ["--data-dir", str(data), "domains", "suggest", "--config", str(config),
                                 "--format", "jsonl", "--protect-top", "2"])
    assert result.exit_code == 0, result.output
    assert "protected 2 domain(s): harbourside-supplies.com, northgate-metals.co.uk" in result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["protected"] for r in rows[:3]] == [True, True, False]

    context = build_context(config, settings)  # what ``scan`` uses: the store's protected domains count
    found = context.domain_index.check("harbourside-supplies-billing.com")
    assert found is not None and found.lookalike_of == "harbourside-supplies.com" and found.kind == "partner"
    assert context.domain_index.check("harbourside-supplies.com") is None
    assert Context.for_org(load_org(config)).domain_index.check("harbourside-supplies-billing.com") is None

    table = runner.invoke(app, ["--data-dir", str(data), "domains", "suggest", "--config", str(config)])
    assert table.exit_code == 0 and "harbourside" in table.stdout and "2025-12-01" in table.stdout


def test_suggest_before_learning_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--data-dir", str(tmp_path / "data"), "domains", "suggest", "--format", "jsonl"])
    assert result.exit_code == 0 and result.stdout == "" and "learn" in result.stderr
    bad = runner.invoke(app, ["--data-dir", str(tmp_path / "data"), "domains", "suggest", "--top", "0"])
    assert bad.exit_code == 2
