"""The DNS posture check against a real DNS server (Knot on loopback, zones in conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailwarden.cli import app
from mailwarden.dmarc.posture import DomainPosture, check_domains
from mailwarden.dmarc.settings import default_settings
from mailwarden.dns import LiveResolver

runner = CliRunner()


@pytest.fixture
def resolver(posture_dns: str) -> Iterator[LiveResolver]:
    with LiveResolver(posture_dns, timeout=1.0) as live:
        yield live


def check(resolver: LiveResolver, domain: str, role: str = "own") -> DomainPosture:
    [result] = check_domains(resolver, [domain], {domain: role}, default_settings().posture)  # type: ignore[dict-item]
    return result


def problems(result: DomainPosture) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for finding in result.findings:
        found.setdefault(finding.severity, []).append(f"{finding.check}: {finding.problem}")
    return found


def test_a_strong_domain_has_nothing_serious(resolver: LiveResolver) -> None:
    result = check(resolver, "strong.posture.test")
    assert result.worst in ("info", "none"), problems(result)
    assert result.dmarc["strength"] == "reject" and result.dmarc["rua"] == ["mailto:dmarc@strong.posture.test"]
    assert result.spf["lookups"] == 1 and result.spf["all"] == "-all"
    assert [(k["selector"], k["bits"]) for k in result.dkim] == [("selector1", 2048)]
    assert result.mta_sts == {"record": "v=STSv1; id=20261201", "id": "20261201"}
    assert result.tls_rpt is not None and result.mx == ["10 mx.strong.posture.test"]


def test_a_weak_domain_lists_what_to_fix(resolver: LiveResolver) -> None:
    result = check(resolver, "weak.posture.test")
    found = problems(result)
    assert any("'+all'" in p for p in found["critical"])
    assert any("p=none" in p for p in found["high"])
    assert any("no rua" in p for p in found["medium"])
    assert any("no MTA-STS" in p for p in found["low"]) and any("no TLS-RPT" in p for p in found["low"])
    assert all(f.fix for f in result.findings)
    assert result.dkim == []  # its selector is not a common one


def test_configured_selectors_are_tried(resolver: LiveResolver) -> None:
    from dataclasses import replace

    settings = replace(default_settings().posture, dkim_selectors=("mycorp2024",))
    [result] = check_domains(resolver, ["weak.posture.test"], None, settings)
    assert [(k["selector"], k["bits"]) for k in result.dkim] == [("mycorp2024", 1024)]
    assert any("1024-bit" in f.problem for f in result.findings)


def test_partial_policies_and_lookup_counts(resolver: LiveResolver) -> None:
    partial = problems(check(resolver, "partial.posture.test"))
    assert any("pct=25" in p for p in partial["medium"]) and any("sp=none" in p for p in partial["medium"])
    assert any("needs 9 of the 10 DNS lookups" in p for p in partial["medium"])
    toomany = check(resolver, "toomany.posture.test")
    assert toomany.spf["result"] == "permerror" and "more than 10 DNS lookups" in toomany.spf["reason"]
    broken = problems(check(resolver, "broken.posture.test"))
    assert any("2 SPF records" in p for p in broken["critical"]) and any("no DMARC" in p for p in broken["critical"])


def test_a_partner_without_dmarc_is_flagged(resolver: LiveResolver) -> None:
    result = check(resolver, "partner.posture.test", "partner")
    assert result.partner_flag == "no_dmarc"
    assert any(f.check == "partner" and "easier to deliver" in f.problem for f in result.findings)
    assert check(resolver, "weak.posture.test", "partner").partner_flag == "weak_dmarc"
    assert check(resolver, "strong.posture.test", "partner").partner_flag is None


def test_null_mx_and_inherited_policy(resolver: LiveResolver) -> None:
    parked = check(resolver, "parked.posture.test")
    assert any("null MX" in f.problem for f in parked.findings)
    assert not any(f.check in ("mta_sts", "tls_rpt") for f in parked.findings)
    sub = check(resolver, "sub.strong.posture.test")
    assert sub.dmarc["strength"] == "missing"  # posture.test itself publishes none


def test_the_posture_command(posture_dns: str, tmp_path: Path) -> None:
    config = tmp_path / "org.toml"
    config.write_text('[organization]\nname = "Acme"\ndomains = ["strong.posture.test"]\n\n[[partners]]\n'
                      'name = "Partner"\ndomains = ["partner.posture.test"]\n\n'
                      '[dmarc]\ndkim_selectors = ["mycorp2024"]\n')
    result = runner.invoke(app, ["dmarc", "posture", "--config", str(config), "--resolver", posture_dns,
                                 "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    rows = {row["domain"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert rows["strong.posture.test"]["role"] == "own"
    assert rows["partner.posture.test"]["partner_flag"] == "no_dmarc"
    table = runner.invoke(app, ["dmarc", "posture", "weak.posture.test", "--partner", "weak.posture.test",
                                "--selector", "mycorp2024", "--resolver", posture_dns], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "flagged" in table.stdout and "mycorp2024" in table.stdout
    assert runner.invoke(app, ["dmarc", "posture"]).exit_code == 2
    assert runner.invoke(app, ["dmarc", "posture", "x.test", "--resolver", "nope:port"]).exit_code == 2
