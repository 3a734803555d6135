"""The detection data files: they load, fold text as documented, and hold no useless entries."""

import tomllib
from importlib import resources

from mailwarden.detection import fold, is_disguised_letter, load_detection_data


def test_fold_reads_disguised_text_as_plain_latin() -> None:
    assert fold("𝗚𝗲𝘁") == "get"
    assert fold("Ꮮеdgеr") == "ledger"
    assert fold("Bestätigung") == "bestatigung"
    assert fold("ᴘᴀʏᴍᴇɴᴛ") == "payment"
    assert fold("Co\U000e0139in\U000e0139base") == "coinbase"


def test_disguised_letters() -> None:
    assert is_disguised_letter("е")  # Cyrillic e
    assert is_disguised_letter("𝗚")
    assert not is_disguised_letter("é")
    assert not is_disguised_letter("e")


def test_every_lure_category_has_a_signal_and_phrases_in_four_languages_or_more() -> None:
    doc = tomllib.loads(resources.files("mailwarden").joinpath("data", "lures.toml").read_text("utf-8"))
    for name, table in doc.items():
        languages = [k for k in table if k != "signal"]
        assert table["signal"].startswith("content."), name
        assert {"en", "de", "fr", "es"} <= set(languages), name


def test_phrases_match_whole_words_only() -> None:
    urgency = load_detection_data().lure("urgency")
    assert urgency.matches(fold("Please act now.")) == ["act now"]
    assert urgency.matches(fold("the contract nowhere")) == []


def test_words_of_a_phrase_may_be_joined_by_hyphens_or_underscores() -> None:
    spam = load_detection_data().lure("spam")
    assert spam.matches(fold("GET 50-FREE-SPINS now")) == ["free spins"]
    assert load_detection_data().lure("urgency").matches(fold("act_now")) == ["act now"]


def test_a_trade_mark_sign_ends_a_word() -> None:
    assert fold("Mcafee™ Total") == "mcafee  total"


def test_brands_have_names_and_real_domains() -> None:
    data = load_detection_data()
    for brand in data.brands:
        assert brand.names, brand.key
        assert all("." in d for d in brand.domains), brand.key


def test_lists_are_lower_case_and_non_empty() -> None:
    data = load_detection_data()
    for values in (data.freemail, data.shorteners, data.free_hosting, data.abused_tlds):
        assert values
        assert all(v == v.lower().strip() for v in values)
