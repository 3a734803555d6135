"""``mailwarden domains check``: output schema and exit codes."""

import json
from pathlib import Path

from typer.testing import CliRunner

from mailwarden.cli import app

SCENARIO_ORG = Path(__file__).resolve().parents[2].parent / "shared" / "scenarios" / "org.toml"
runner = CliRunner()


def check(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["domains", "check", *args])
    return result.exit_code, result.stdout, result.stderr


def test_one_json_object_per_candidate() -> None:
    code, out, _ = check("--config", str(SCENARIO_ORG), "marlowfenvvick.co.uk", "example.org")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows == [
        {"domain": "marlowfenvvick.co.uk", "lookalike_of": "marlowfenwick.co.uk", "technique": "homoglyph",
         "score": 90},
        {"domain": "example.org", "lookalike_of": None, "technique": None, "score": 0},
    ]


def test_protect_and_allow_on_the_command_line() -> None:
    code, out, _ = check("--protect", "globex-logistics.com", "--allow", "globex-logistic.com",
                         "globex-logistics.com.invoice-view.net", "globex-logistic.com", "globex-logistics.de")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["lookalike_of"], r["technique"]) for r in rows] == [
        ("globex-logistics.com", "subdomain"), (None, None), ("globex-logistics.com", "tld_swap")]


def test_a_table_for_people() -> None:
    code, out, _ = check("--protect", "paypal.com", "--format", "table", "paypa1.com")
    assert code == 0
    assert "paypa1.com" in out and "homoglyph" in out


def test_usage_errors_exit_2() -> None:
    code, _, err = check("paypa1.com")
    assert code == 2 and "nothing to protect" in err
    code, _, err = check("--protect", "co.uk", "x.co.uk")
    assert code == 2 and "co.uk" in err
    code, _, err = check("--config", "/nonexistent/org.toml", "x.com")
    assert code == 2
