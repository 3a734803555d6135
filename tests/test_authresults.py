"""Authentication-Results (RFC 8601): who wrote it, and which method said what about which domain."""

from __future__ import annotations

from mailwarden.authresults import parse_authentication_results


def test_authserv_id_methods_results_and_properties() -> None:
    ar = parse_authentication_results(
        "mx1.acme.example; spf=pass smtp.mailfrom=billing@Partner.example; "
        "dkim=pass header.d=partner.example header.s=sel1; dmarc=pass header.from=partner.example"
    )
    assert ar.authserv_id == "mx1.acme.example"
    assert [(r.method, r.result) for r in ar.results] == [("spf", "pass"), ("dkim", "pass"), ("dmarc", "pass")]
    spf = ar.first("spf")
    assert spf is not None
    assert spf.prop("smtp.mailfrom") == "billing@Partner.example"
    assert spf.domain == "partner.example"
    dkim = ar.first("dkim")
    assert dkim is not None and dkim.domain == "partner.example" and dkim.prop("header.s") == "sel1"
    assert ar.first("arc") is None
    assert ar.method("arc") == []


def test_authserv_id_is_lower_case_and_may_carry_a_version_and_comments() -> None:
    ar = parse_authentication_results("(our MTA) MX.Google.COM 1 (version); spf=softfail smtp.helo=h.example.org")
    assert ar.authserv_id == "mx.google.com"
    spf = ar.first("spf")
    assert spf is not None and spf.result == "softfail" and spf.domain == "h.example.org"


def test_comments_are_kept_apart_and_dmarc_policy_read_from_them() -> None:
    ar = parse_authentication_results(
        "mx.google.com; spf=pass (google.com: domain of a@b.example designates 192.0.2.1 as permitted sender) "
        "smtp.mailfrom=a@b.example; dmarc=fail (p=REJECT sp=NONE dis=NONE) header.from=b.example"
    )
    spf = ar.first("spf")
    assert spf is not None and spf.comment.startswith("google.com: domain of")
    assert spf.properties == {"smtp.mailfrom": "a@b.example"}
    dmarc = ar.first("dmarc")
    assert dmarc is not None
    assert dmarc.result == "fail"
    assert dmarc.prop("policy.published-domain-policy") == "reject"
    assert dmarc.domain == "b.example"


def test_an_explicit_policy_property_wins_over_the_comment() -> None:
    ar = parse_authentication_results(
        "mx.example; dmarc=pass (p=none) policy.published-domain-policy=quarantine header.from=a.example")
    dmarc = ar.first("dmarc")
    assert dmarc is not None and dmarc.prop("policy.published-domain-policy") == "quarantine"


def test_several_results_of_one_method_and_missing_semicolons() -> None:
    ar = parse_authentication_results(
        "mx.example; dkim=pass header.d=a.example dkim=fail header.d=b.example; arc=pass smtp.remote-ip=192.0.2.1")
    assert [(r.method, r.result, r.domain) for r in ar.results] == [
        ("dkim", "pass", "a.example"), ("dkim", "fail", "b.example"), ("arc", "pass", "")]


def test_domain_from_header_i_when_there_is_no_header_d() -> None:
    ar = parse_authentication_results("mx.example; dkim=pass header.i=@Mail.Example.org header.b=abc")
    dkim = ar.first("dkim")
    assert dkim is not None and dkim.domain == "mail.example.org"


def test_quoted_values_and_semicolons_inside_quotes_or_comments() -> None:
    ar = parse_authentication_results(
        'mx.example; auth=pass smtp.auth="user; name" (said; the server); spf=none smtp.mailfrom=x.example')
    auth = ar.first("auth")
    assert auth is not None and auth.prop("smtp.auth") == "user; name"
    assert [r.method for r in ar.results] == ["auth", "spf"]


def test_no_results() -> None:
    ar = parse_authentication_results("mx.example; none")
    assert ar.authserv_id == "mx.example" and ar.results == ()


def test_a_header_without_authserv_id_is_read_but_attributed_to_no_one() -> None:
    ar = parse_authentication_results("spf=pass smtp.mailfrom=x.example")
    assert ar.authserv_id is None
    assert [r.result for r in ar.method("spf")] == ["pass"]


def test_folded_whitespace_and_case_are_normalised() -> None:
    ar = parse_authentication_results("mx.example;\r\n\tSPF=PASS\r\n  smtp.mailfrom=x.example")
    assert [(r.method, r.result) for r in ar.results] == [("spf", "pass")]


def test_garbage_does_not_raise() -> None:
    for value in ["", ";;;", "(((", ")))", '"unterminated', "=", "mx; =pass", "mx; spf=", "\x00\udcff"]:
        ar = parse_authentication_results(value)
        assert isinstance(ar.results, tuple)
