"""``mailwarden learn`` turns the scenario's past mail into stored per-sender and per-domain profiles."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailwarden.cli import app
from mailwarden.config import Settings
from mailwarden.profiles import Profiles
from mailwarden.store import Store

SCENARIOS = Path(__file__).parents[1] / ".." / "shared" / "scenarios"
ORG_TOML = SCENARIOS / "org.toml"
HISTORY = SCENARIOS / "history"


@pytest.fixture
def data_dir(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data dir whose database is the default SQLite file, or PostgreSQL via MAILWARDEN_DATABASE_URL."""
    if database_url.startswith("sqlite"):
        monkeypatch.delenv("MAILWARDEN_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("MAILWARDEN_DATABASE_URL", database_url)
    return tmp_path / "data"


def learn(data_dir: Path) -> str:
    args = ["--data-dir", str(data_dir), "learn", "--config", str(ORG_TOML), str(HISTORY)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def stored_profiles(data_dir: Path) -> Profiles:
    with Store.open(Settings.from_env(data_dir)) as store:
        return store.load_profiles()


def test_learn_reports_what_it_learned(data_dir: Path) -> None:
    output = learn(data_dir)
    assert "learned 20 messages (0 unreadable)" in output


def test_learning_the_history_profiles_each_partner(data_dir: Path) -> None:
    learn(data_dir)
    profiles = stored_profiles(data_dir)

    billing = profiles.senders["billing@bramwellfreight.com"]
    assert billing.kind == "sender" and billing.count == 1
    assert billing.first_seen == billing.last_seen == datetime(2026, 1, 16, 12, 30, 3, tzinfo=UTC)
    assert "185.47.129.34" in billing.ips  # mail.bramwellfreight.com, the server that reached our MX
    assert billing.sending_domains == {"bramwellfreight.com"}
    assert billing.dkim_domains == {"bramwellfreight.com"}
    assert billing.recipients == {"accounts.payable@marlowfenwick.co.uk"}

    bramwell = profiles.domains["bramwellfreight.com"]
    assert bramwell.count == 3
    assert "zendesk.com" in bramwell.reply_to_domains  # its helpdesk tickets reply to Zendesk

    castlegate = profiles.domains["castlegatepolymers.co.uk"]
    assert "castlegatepolymers.co.uk" in castlegate.dkim_domains
    assert castlegate.first_seen < castlegate.last_seen


def test_learning_remembers_the_office_ip_partners_submit_from(data_dir: Path) -> None:
    learn(data_dir)
    assert "81.134.209.18" in stored_profiles(data_dir).senders["billing@bramwellfreight.com"].ips


def test_learning_the_same_mail_twice_doubles_counts_and_keeps_sets(data_dir: Path) -> None:
    learn(data_dir)
    once = stored_profiles(data_dir)
    learn(data_dir)
    twice = stored_profiles(data_dir)

    assert twice.senders.keys() == once.senders.keys()
    assert twice.domains.keys() == once.domains.keys()
    for before, after in [*zip(once.senders.values(), (twice.senders[k] for k in once.senders), strict=True),
                          *zip(once.domains.values(), (twice.domains[k] for k in once.domains), strict=True)]:
        assert after.count == 2 * before.count, before.key
        assert (after.first_seen, after.last_seen) == (before.first_seen, before.last_seen), before.key
        assert all(getattr(after, name) == getattr(before, name) for name in before.SET_FIELDS), before.key
