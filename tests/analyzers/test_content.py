"""Language lures, brand impersonation and layout tricks, in several languages."""

import pytest
from mailbuilder import build, ids

from mailwarden.analyzers import content
from mailwarden.pipeline import Context


def analyze(message):  # type: ignore[no-untyped-def]
    return ids(content.analyze(message, Context()))


@pytest.mark.parametrize("text", [
    "Your mailbox is full. Verify your account within 24 hours or it will be suspended.",
    "Ihr Postfach ist voll. Bestätigen Sie Ihre Identität innerhalb von 24 Stunden, sonst wird es gesperrt.",
    "Votre boîte aux lettres est pleine. Vérifiez votre compte dans les 24 heures.",
    "Su buzón está lleno. Verifique su cuenta dentro de 24 horas o será suspendida.",
    "Sua caixa de entrada cheia: verifique sua conta em 24 horas.",
])
def test_credential_lures_in_several_languages(text: str) -> None:
    assert {"content.credential_lure", "content.urgency"} <= analyze(build(body=text))


def test_brand_in_display_name_from_an_unrelated_domain() -> None:
    found = content.analyze(build(from_="Microsoft account team <no-reply@access-security.example>"), Context())
    assert [s.id for s in found if s.id == "content.brand_impersonation"] == ["content.brand_impersonation"]


def test_brand_in_display_name_from_the_brand_itself() -> None:
    assert "content.brand_impersonation" not in analyze(build(from_="Microsoft <account@microsoft.com>"))
    assert "content.brand_impersonation" not in analyze(
        build(from_='"Martin via Docusign" <dse@eumail.docusign.net>'))


def test_look_alike_letters_are_folded_and_flagged() -> None:
    found = analyze(build(from_="=?utf-8?b?4Y+e0LVkZ9C1cg==?= <x@mail.example>", subject="Verify your waIIet"))
    assert "content.brand_impersonation" in found  # "Ꮮеdgеr" reads as Ledger
    assert "content.credential_lure" in found  # "waIIet" reads as wallet


def test_gift_card_ask_from_free_mail() -> None:
    found = analyze(build(from_="Adrian Kell <adriankell.office@gmail.com>", subject="quick favour",
                          body="Are you at your desk? I need you to buy Apple gift cards and send me the codes."))
    assert {"content.secrecy", "content.payment_request", "content.freemail_lure"} <= found


def test_random_token_and_emoji_in_subject() -> None:
    found = analyze(build(subject="🎁 Saldo disponível-WBmmvfJdFtGqOvWw"))
    assert {"content.random_token", "content.subject_symbols"} <= found


def test_recipient_address_pasted_into_subject() -> None:
    assert "content.recipient_in_subject" in analyze(build(to="bob@acme-corp.com",
                                                           subject="bob@acme-corp.com, please verify"))


@pytest.mark.parametrize("body", [
    "Hi Bob, the minutes from Tuesday are attached. Let me know if I missed anything.",
    "Your GitHub password was changed. If you did this, you can ignore this message.",
    "Thanks for your order. Your receipt is attached.",
])
def test_ordinary_business_mail_is_quiet(body: str) -> None:
    assert analyze(build(body=body)) == set()


def test_free_mail_account_named_like_a_company_function() -> None:
    found = analyze(build(from_="Customer Support Team <helpdesk.team1988@gmail.com>"))
    assert "content.role_name_freemail" in found
    assert "content.role_name_freemail" not in analyze(build(from_="Customer Support <support@example.org>"))


def test_notification_counter_in_the_sender_name() -> None:
    assert "content.counter_in_name" in analyze(build(from_='"NEW MESSAGE (1)" <m@chat.example>'))


@pytest.mark.parametrize("name", ["Liberty_Mutual_Team", "Conta Microsft - Atendimento", "F.e.d.E.x",
                                  "N e t f l i x !"])
def test_brands_spelt_with_separators_or_a_typo(name: str) -> None:
    assert "content.brand_impersonation" in analyze(build(from_=f'"{name}" <x@mailer.example>'))


@pytest.mark.parametrize("name", ["Starling Bank", "Trevor Johnston", "Ingrid Bergman"])
def test_names_that_merely_contain_a_brand_are_not_impersonation(name: str) -> None:
    assert "content.brand_impersonation" not in analyze(build(from_=f'"{name}" <x@mailer.example>'))


def test_a_verified_brand_notice_may_ask_to_sign_in() -> None:
    body = "Unusual sign-in activity. Review document now. Verify your identity within 24 hours."
    headers = {"Authentication-Results": "mx.acme.example; dkim=pass header.d=docusign.net; dmarc=pass "
                                         "header.from=docusign.net"}
    genuine = build(from_="DocuSign <dse@docusign.net>", body=body, headers=headers, authserv_id="mx.acme.example")
    assert "content.credential_lure" not in analyze(genuine)
    forged = build(from_="DocuSign <dse@docusign.net>", body=body)
    assert "content.credential_lure" in analyze(forged)


def test_text_hidden_from_the_reader_beyond_a_preheader() -> None:
    padding = "<div style='display:none'>" + "lorem ipsum dolor " * 30 + "</div>"
    assert "content.hidden_text" in analyze(build(html=f"<p>Pay now</p>{padding}<a href='https://x.example'>go</a>"))
    preheader = "<span style='display:none;font-size:0'>Your March statement is ready</span>"
    assert "content.hidden_text" not in analyze(build(html=f"{preheader}<p>Statement attached.</p>"))


def test_html_that_is_only_a_picture_to_click() -> None:
    message = build(html='<a href="https://promo.example/x"><img src="cid:banner"></a>', body="")
    assert "content.image_only" in analyze(message)


def test_shouting_subject_and_foreign_marks_in_latin_words() -> None:
    assert "content.shouting_subject" in analyze(build(subject="URGENT NOTICE FROM THE BANK"))
    assert "content.obfuscated_text" in analyze(build(subject="Fa\u0337lha na e\u0337ntre\u0337ga pendente"))
    assert "content.obfuscated_text" not in analyze(build(subject="Façade rénovée à Zürich"))


def test_domains_built_on_a_brand_name() -> None:
    found = analyze(build(from_="Support <help@support-trustwallet.example>",
                          body="Go to https://paypal-resolution-center.example/login"))
    assert {"content.brand_in_sender_domain", "content.brand_in_link_domain"} <= found
    assert not {"content.brand_in_sender_domain", "content.brand_in_link_domain"} & analyze(
        build(from_="Starling <no-reply@starlingbank.com>", body="See https://www.paypal.com/activity"))


def test_a_brand_in_the_subject_counts_only_with_a_request() -> None:
    assert "content.brand_in_subject" not in analyze(build(subject="Google releases a new CVS mirror"))
    assert "content.brand_in_subject" in analyze(build(subject="Your Apple ID", body="Verify your account now."))


def test_brand_impersonation_inside_an_inline_forward() -> None:
    body = ("________________________________\nDe: McAfee Department <offers@temoisgsiqnl.example>\n"
            "Enviado: segunda-feira, 16 de janeiro de 2026 08:31\nPara: bob@acme-corp.com\n\nSave 67% today")
    found = content.analyze(build(from_="Bob <bob@acme-corp.com>", subject="ENC: Save up to 67%", body=body),
                            Context())
    impersonation = [s for s in found if s.id == "content.brand_impersonation"]
    assert impersonation and impersonation[0].evidence["forwarded"] is True


def test_a_brand_inside_a_longer_word_is_not_that_brand() -> None:
    assert "content.brand_impersonation" not in analyze(build(from_='"Ledgerline Security" <x@mailer.example>'))


@pytest.mark.parametrize(("subject", "body"), [
    ("Receive your Stealth Airdrop now", "Claim your tokens before the presale ends. Connect with MetaMask."),
    ("Mining_balance_0.7495_BTC", "Your cloud mining balance is ready to withdraw in bitcoin."),
    ("Sua carteira", "Sua carteira cripto foi bloqueada. Criptomoedas aguardando saque."),
])
def test_crypto_bait(subject: str, body: str) -> None:
    assert "content.crypto_lure" in analyze(build(subject=subject, body=body))


def test_a_sign_up_notice_whose_user_name_is_a_web_address_is_form_abuse() -> None:
    body = ("Thanks for creating an account on Pacific Dive. Username: www.dfurrt.blogspot.jp - 180 861 USD BINANCE. "
            "To set your password, visit https://dive.example/wp-login.php?action=rp&login=www.dfurrt.blogspot.jp")
    assert "content.form_abuse" in analyze(build(subject="[Pacific Dive] Login Details", body=body))


def test_words_joined_by_underscores_in_the_subject_are_read_as_words() -> None:
    found = analyze(build(subject="Microsoft_unusual_signin_activity", body="Review it here."))
    assert "content.credential_lure" in found


def test_a_free_mail_account_writing_as_a_brand_and_asking_to_call_is_impersonation() -> None:
    body = ("PayPal Hi Dear customer, a charge of USD 344.78 has been applied to your PayPal, Inc. account. "
            "If you do not recognize this charge, call us at +1 (808) 555-0142.")
    assert "content.brand_impersonation" in analyze(build(from_="billing <aalibabu210@gmail.com>", body=body))


@pytest.mark.parametrize("sender", ['"Mcafee™" <newsletter@cheesecakes.example>', '"Barclays" <reply@brc.example>',
                                    '"SSA_Social Security benefits." <survey@qp-mail.example>',
                                    '"Electrum WALLET" <info@bullsletter.example>'])
def test_a_brand_name_followed_by_a_trade_mark_sign_or_a_bank_name_is_impersonation(sender: str) -> None:
    assert "content.brand_impersonation" in analyze(build(from_=sender, body="Your protection has expired."))


def test_a_fake_invoice_that_asks_for_a_phone_call() -> None:
    body = ("Your Norton 360 subscription was automatically renewed and $399.99 has been charged. "
            "If you did not authorize this charge, call our billing department at +1 (808) 555-0142 to cancel.")
    assert "content.callback_scam" in analyze(build(subject="Order Confirmation", body=body))


@pytest.mark.parametrize(("signal", "sender", "subject", "body"), [
    pytest.param("content.crypto_lure", "", "Re: crypto patches",
                 "The crypto library now ships elliptic curve code; see the OpenSSL mailing list.", id="cryptography"),
    pytest.param("content.crypto_lure", "", "Maintenance tonight",
                 "Please rotate the SSH private key on the build host; the digital assets library moves to the new "
                 "share.", id="keys-and-asset-libraries"),
    pytest.param("content.form_abuse", "", "Your account",
                 "Your account is ready. Login: https://www.jobfair.example/account with the user name you chose.",
                 id="login-page-address"),
    pytest.param("content.brand_impersonation", "Ana <ana.lopez@gmail.com>", "Hello",
                 "I moved my photos to Google Drive last week; the album link is below. See you Sunday!",
                 id="friend-on-free-mail-names-a-brand"),
    pytest.param("content.callback_scam", "", "Your plan renews",
                 "Your plan renews next month. To cancel your subscription, visit your account settings.",
                 id="renewal-without-a-phone-number"),
    pytest.param("content.unsolicited_bulk", "", "Introducing Trusscalc 5",
                 "You are receiving this email because you signed up at trusscalc.example. If you no longer wish to "
                 "receive these emails, unsubscribe or manage your preferences.", id="newsletter-says-why-it-came"),
    pytest.param("content.dating_lure", "", "Re: new hardware",
                 "The new case design looks sexy. We will hook up the build server tonight and flirt with the idea "
                 "of ARM.", id="everyday-words-near-romance"),
    pytest.param("content.legal_threat", "", "Today's news",
                 "The court hearing was adjourned; the judge issued a summons to the company's directors.",
                 id="news-about-courts"),
])
def test_ordinary_mail_near_a_lure_does_not_raise_it(signal: str, sender: str, subject: str, body: str) -> None:
    message = build(from_=sender, subject=subject, body=body) if sender else build(subject=subject, body=body)
    assert signal not in analyze(message)


def test_a_lower_case_l_for_a_capital_i_in_a_shouted_word() -> None:
    assert "content.obfuscated_text" in analyze(build(from_='"BEST VlAGRA&ClALlS" <x@shop.example>'))


@pytest.mark.parametrize(("signal", "body"), [
    ("content.dating_lure", "Ukrainian beauties would like to meet you. See my profile and my private photos."),
    ("content.dating_lure", "Rencontrer des beautés ukrainiennes, des célibataires près de chez vous."),
    ("content.dating_lure", "Ondeugende singles wachten al op jou. Russische schoonheden willen chatten!"),
    ("content.dating_lure", "Durf jij een ervaren vrouw te ontmoeten? Ik zoek een man die durft. Ontmoet mij nu."),
    ("content.dating_lure", "Im a unmarried female from Ukraine. What State are You from? I will send you my picture."),
    ("content.legal_threat", "INTIMAÇÃO ELETRÔNICA. Notificação extrajudicial, número do processo em anexo."),
    ("content.legal_threat", "Ein Mahnbescheid wurde beantragt; die Vorladung finden Sie im Anhang."),
    ("content.legal_threat", "A warrant for your arrest will be issued unless you call today."),
    ("content.unsolicited_bulk", "This is an advertisement. To unsubscribe from future mailings, write to PO Box 7."),
    ("content.unsolicited_bulk", "Esta é uma mensagem publicitária enviada pelos nossos parceiros."),
    ("content.crypto_lure", "Join the presale and link your wallet before the official token lists."),
    ("content.credential_lure", "Dear Valued User, your account is experiencing a payment issue."),
    ("content.advance_fee",
     "Sou a Sra. Anitha Jacobs, uma viúva doente. Tenho um fundo de donativos para obras de caridade."),
    ("content.dating_lure", "I hope u can speak. Where r You from and how old r You? Write me to anna@example.com"),
    ("content.advance_fee", "The investor died intestate, no next-of-kin has come to lay claim of the estate."),
    ("content.advance_fee", "Tenho uma oportunidade de negócio lucrativa que gostaria de compartilhar."),
    ("content.crypto_lure", "Notre robot de trading sur une plateforme de trading agréée multiplie vos gains."),
    ("content.credential_lure", "Vos droits CPF expirent : connectez-vous à mon compte formation."),
    ("content.advance_fee",
     "Dear email owner, I am donating to 5 random individuals: your email address was selected."),
])
def test_dating_bait_legal_threats_and_advance_fee_stories(signal: str, body: str) -> None:
    assert signal in analyze(build(body=body))
