"""``mailwarden domains watch``: output, state across runs, notification, exit codes; ``[notify]`` and
``[watch]`` settings."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner
from watchharness import CONTACTS, OWN_REGISTERED, REGISTERED, SmtpServer

from mailwarden.cli import app
from mailwarden.config import NotifySettings, WatchSettings, org_from_dict
from mailwarden.errors import ConfigError

runner = CliRunner()


def watch(data: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--data-dir", str(data), "domains", "watch", *args])
    return result.exit_code, result.stdout, result.stderr


def test_watch_prints_what_is_new_and_tells_partners(tmp_path: Path, org_toml: Callable[[str], Path],
                                                     watch_dns: str, smtp_server: SmtpServer) -> None:
    config = org_toml('\n[notify]\nfrom = "security@marlowfenwick.co.uk"\n')
    args = ["--config", str(config), "--resolver", watch_dns, "--relay", smtp_server.address, "--format", "jsonl"]
    code, out, err = watch(tmp_path / "data", *args)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert {r["domain"]: r["lookalike_of"] for r in rows} == {d: of for d, (of, _) in REGISTERED.items()}
    assert all(r["change"] == "registered" and r["status"] == "registered" for r in rows)
    summary = json.loads(err.split("watch: ", 1)[1].splitlines()[0])
    assert summary["new"] == len(REGISTERED) and summary["notified"] == len(OWN_REGISTERED) * len(CONTACTS)
    assert summary["statuses"]["wildcard"] >= 3 and summary["statuses"]["unknown"] >= 3
    assert len(smtp_server.mailbox.messages) == len(OWN_REGISTERED) * len(CONTACTS)

    code, out, err = watch(tmp_path / "data", *args)
    assert code == 0 and out == ""
    assert json.loads(err.split("watch: ", 1)[1].splitlines()[0])["notified"] == 0
    assert len(smtp_server.mailbox.messages) == len(OWN_REGISTERED) * len(CONTACTS)


def test_watch_table_and_no_notify(tmp_path: Path, org_toml: Callable[[str], Path], watch_dns: str,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILWARDEN_RELAY", "127.0.0.1:1")  # would fail: --no-notify never tries
    monkeypatch.setenv("MAILWARDEN_RESOLVER", watch_dns)
    code, out, err = watch(tmp_path / "data", "--config", str(org_toml("")), "--no-notify")
    assert code == 0, err
    assert "marlowfen" in out and "homoglyph" in out and "tld_swap" in out  # a table, from MAILWARDEN_RESOLVER
    assert '"notified": 0' in err and '"notify_failed": 0' in err
    code, out, err = watch(tmp_path / "data", "--config", str(org_toml("")), "--no-notify", "--max-queries", "10")
    assert code == 0 and '"queries": 10' in err and '"new": 0' in err


def test_watch_usage_errors_exit_2(tmp_path: Path, org_toml: Callable[[str], Path], watch_dns: str) -> None:
    data = tmp_path / "data"
    code, _, err = watch(data, "--resolver", watch_dns)
    assert code == 2 and "nothing to protect" in err
    code, _, err = watch(data, "--config", str(org_toml("")), "--resolver", "127.0.0.1:notaport")
    assert code == 2 and "port" in err
    code, _, err = watch(data, "--config", str(org_toml("")), "--resolver", watch_dns, "--relay", "nowhere")
    assert code == 2 and "relay" in err
    config = org_toml('\n[notify]\nwebhook = "https://hooks.example/x"\nwebhook_secret_env = "MW_UNSET_SECRET"\n')
    code, _, err = watch(data, "--config", str(config), "--resolver", watch_dns)
    assert code == 2 and "MW_UNSET_SECRET" in err
    code, _, _ = watch(data, "--config", str(org_toml("")), "--rate", "0")
    assert code == 2


def test_notify_and_watch_settings_are_validated() -> None:
    org = org_from_dict({"notify": {"relay": "mail.example:25", "from": "security@acme.example",
                                    "webhook": "https://hooks.example/mw", "webhook_secret_env": "MW_SECRET",
                                    "timeout": 5},
                         "watch": {"suffixes": ["com", ".co.uk"], "words": ["invoice"], "rate": 50,
                                   "max_queries": 1000, "concurrency": 8, "interval": 3600}})
    assert org.notify == NotifySettings("mail.example:25", "security@acme.example", "https://hooks.example/mw",
                                        "MW_SECRET", 5.0)
    assert org.watch == WatchSettings(("com", "co.uk"), ("invoice",), 50.0, 1000, 8, 3600.0)
    assert org_from_dict({}).notify == NotifySettings() and org_from_dict({}).watch == WatchSettings()
    assert org_from_dict({"notify": {"webhook": "http://127.0.0.1:8080/x", "webhook_secret_env": "S"}}).notify.webhook
    for bad in ({"notify": {"relay": "mail.example"}}, {"notify": {"from": "not an address"}},
                {"notify": {"webhook": "http://hooks.example/x", "webhook_secret_env": "S"}},
                {"notify": {"webhook": "https://hooks.example/x"}},
                {"notify": {"webhook": "https://hooks.example/x", "webhook_secret_env": "not a name"}},
                {"notify": {"from": "a@b.example\r\nBcc: c@d.example"}}, {"notify": {"relays": "x:25"}},
                {"notify": "relay"}, {"watch": {"rate": 0}}, {"watch": {"suffixes": "com"}},
                {"watch": {"words": ["two words"]}}, {"watch": {"interval": 1}}, {"watch": {"every": 1}}):
        with pytest.raises(ConfigError):
            org_from_dict(bad)
