"""The pipeline: analyzers to verdict, explained, deterministic, never crashing on an analyzer bug."""

from pathlib import Path

from mailbuilder import build

from mailwarden.config import load_org
from mailwarden.message import parse
from mailwarden.pipeline import Context, scan
from mailwarden.signals import Verdict

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def phishy():  # type: ignore[no-untyped-def]
    return build(from_="Microsoft account team <no-reply@access-security.example>", to="undisclosed-recipients:;",
                 subject="Unusual sign-in activity",
                 html='<p>Dear user, verify your account within 24 hours or it will be suspended.</p>'
                      '<a href="http://192.0.2.9/o365/">https://login.microsoftonline.com</a>')


def test_a_credential_phish_is_quarantined_and_explained() -> None:
    result = scan(phishy(), Context())
    assert result.verdict in (Verdict.QUARANTINE, Verdict.REJECT)
    assert result.signals[0].score >= result.signals[-1].score
    assert "Microsoft" in result.explanation or "microsoft" in result.explanation
    kinds = {i.type for i in result.indicators}
    assert {"domain", "url", "email-addr", "ipv4"} <= kinds


def test_plain_business_mail_is_delivered_with_no_indicators() -> None:
    result = scan(build(), Context())
    assert result.verdict is Verdict.DELIVER
    assert result.indicators == ()


def test_the_same_message_gets_the_same_result() -> None:
    assert scan(phishy(), Context()).to_dict() == scan(phishy(), Context()).to_dict()


def test_disabled_analyzers_do_not_run() -> None:
    context = Context()
    context.scoring = context.scoring.__class__(context.scoring.weights, context.scoring.thresholds,
                                                frozenset({"content", "urls", "headers"}))
    assert not any(s.id.startswith(("content.", "url.", "header.")) for s in scan(phishy(), context).signals)


def test_a_failing_analyzer_is_reported_not_raised(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from mailwarden.analyzers import urls

    def broken(message, context):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    monkeypatch.setattr(urls, "analyze", broken)
    result = scan(phishy(), Context())
    assert "scan.analyzer_failed" in {s.id for s in result.signals}
    assert any(s.id.startswith("content.") for s in result.signals)


def test_modern_legitimate_mail_is_not_quarantined() -> None:
    org = load_org(SHARED / "corpora" / "modern-ham" / "org.toml")
    context = Context.for_org(org)
    for path in sorted((SHARED / "corpora" / "modern-ham" / "messages").glob("*.eml")):
        result = scan(parse(path.read_bytes(), authserv_id=org.authserv_id), context)
        assert result.verdict in (Verdict.DELIVER, Verdict.WARN), (path.name, result.explanation)
