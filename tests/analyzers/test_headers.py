"""Header anomalies: which signals must and must not fire."""

from mailbuilder import build, ids

from mailwarden.analyzers import headers
from mailwarden.config import OrgConfig, Partner
from mailwarden.pipeline import Context


def analyze(message, context=None):  # type: ignore[no-untyped-def]
    return ids(headers.analyze(message, context or Context()))


def test_an_ordinary_message_raises_nothing() -> None:
    assert analyze(build()) == set()


def test_reply_to_a_free_mail_box_is_flagged() -> None:
    found = analyze(build(from_="Billing <billing@globex.example>", headers={"Reply-To": "globex.billing@gmail.com"}))
    assert "header.reply_to_freemail" in found
    assert "header.reply_to_mismatch" not in found


def test_reply_to_another_company_is_a_mismatch() -> None:
    found = analyze(build(from_="Billing <billing@globex.example>", headers={"Reply-To": "ap@other.example"}))
    assert found == {"header.reply_to_mismatch"}


def test_reply_to_a_partners_other_domain_is_not_a_mismatch() -> None:
    org = OrgConfig(partners=(Partner("Globex", ("globex.example", "globex-mail.example")),))
    found = analyze(build(from_="b@globex.example", headers={"Reply-To": "ap@globex-mail.example"}),
                    Context.for_org(org))
    assert "header.reply_to_mismatch" not in found


def test_an_address_shown_in_the_display_name_that_is_not_the_sender() -> None:
    found = analyze(build(from_='"service@paypal.com" <x@mailer.invalid-host.example>'))
    assert "header.address_in_display_name" in found


def test_the_senders_own_address_in_the_display_name_is_fine() -> None:
    assert analyze(build(from_='"alice@example.org" <alice@example.org>')) == set()


def test_an_unquoted_display_name_is_read_as_a_client_shows_it() -> None:
    message = build(from_="Microsoft account team ,_<no-reply@access-security.example>")
    assert message.from_ is not None
    assert message.from_.email == "no-reply@access-security.example"
    assert message.from_.display_name.startswith("Microsoft account team")
    found = analyze(message)
    assert "mime.malformed" in found
    assert "header.multiple_from" not in found


def test_undisclosed_recipients() -> None:
    assert "header.undisclosed_recipients" in analyze(build(to="undisclosed-recipients:;"))


def test_decorated_sender_names() -> None:
    assert "header.display_name_symbols" in analyze(build(from_="=?utf-8?q?=F0=9F=92=B0Free_Spins=F0=9F=92=B0?= "
                                                               "<win@casino.example>"))
    assert "header.display_name_symbols" not in analyze(build(from_="Zoë Müller <zoe@example.de>"))


def test_a_from_domain_under_a_top_level_domain_that_does_not_exist() -> None:
    assert "header.unknown_tld" in analyze(build(from_="CarShield <rex_83156@news.sab3atontanks50.xfcgj>"))


def test_a_from_domain_under_a_top_level_domain_mostly_used_for_throwaway_domains() -> None:
    assert "header.abused_tld" in analyze(build(from_="House Buyers <offers@sab3atontanks50.xfcgjbkk.life>"))
    assert "header.abused_tld" not in analyze(build(from_="Shop <news@brand.co.uk>"))


def test_real_and_private_use_top_level_domains_are_fine() -> None:
    for sender in ("a@shop.co.uk", "b@brand.shop", "cron@build.internal", "root@host.localdomain"):
        assert "header.unknown_tld" not in analyze(build(from_=sender))


def test_the_original_sender_of_an_inline_forward_is_held_to_the_same_standard() -> None:
    body = ("FYI\n\n________________________________\nDe: ❤️Bellezze ucraine❤️ <epuaze@pvruky.xfcgj>\n"
            "Enviado: domingo, 8 de janeiro 21:00\nPara: me@example.org\nAssunto: Nuovo messaggio privato\n\nCiao!")
    found = analyze(build(from_="Me <me@example.org>", subject="Fw: Nuovo messaggio privato", body=body))
    assert {"header.unknown_tld", "header.display_name_symbols"} <= found


def test_a_quoted_outlook_header_with_on_behalf_of_is_read_correctly() -> None:
    body = ("> -----Original Message-----\n> From: fork-admin@xent.com [mailto:fork-admin@xent.com]On Behalf Of John\n"
            "> Sent: Friday, September 20, 2002 5:10 PM\n> Subject: Re: lunch\n\nSounds good.")
    assert analyze(build(body=body)) == set()
