"""How a label reads: Unicode TR39 confusables, accents, ASCII letter groups."""

import pytest

from mailwarden.domains.skeleton import foreign_letters, plain, scripts, skeleton, weak_key


@pytest.mark.parametrize(("written", "reads"), [
    ("veltrо-electronics", "veltro-electronics"),  # Cyrillic о (TR39)
    ("раypal", "paypal"),  # Cyrillic р and а
    ("αpple", "apple"),  # Greek alpha
    ("ԁocusign", "docusign"),  # Cyrillic komi de
    ("mícrosoft", "microsoft"),  # an accent
    ("łinkedin", "linkedin"),  # a letter with a stroke
    ("ᴍicrosoft", "microsoft"),  # a small capital
    ("𝐩𝐚𝐲𝐩𝐚𝐥", "paypal"),  # mathematical bold
    ("g00gle", "google"),  # digits read as letters
    ("paypa1", "paypal"),
    ("marlowfenvvick", "marlowfenwick"),  # letter groups
    ("castlegatepolyrners", "castlegatepolymers"),
    ("clocusign", "docusign"),
])
def test_lookalike_spellings_share_the_skeleton(written: str, reads: str) -> None:
    assert skeleton(written) == skeleton(reads)


def test_different_names_keep_different_skeletons() -> None:
    assert skeleton("veltron") != skeleton("veltro")
    assert skeleton("docusiqn") != skeleton("docusign")  # q for g is a typo, found by the edit index


def test_plain_reads_each_letter_on_its_own() -> None:
    assert plain("marlowfenvvick") == "marlowfenvvick"
    assert plain("раура1") == "paypal"
    assert plain("globex0326", fold_digits=False) == "globex0326"


def test_the_weak_key_joins_rough_look_alikes() -> None:
    assert weak_key(plain("rnicrosoft")) == weak_key(plain("nicrosoft"))  # m, rn and n
    assert weak_key(plain("docusiqn")) == weak_key(plain("docusign"))  # q and g
    assert weak_key(plain("castlegate")) != weak_key(plain("castlerock"))


def test_scripts_and_foreign_letters_are_named_for_evidence() -> None:
    assert scripts("veltrо-electronics") == ["LATIN", "CYRILLIC"]
    assert scripts("paypal") == ["LATIN"]
    assert foreign_letters("veltrо") == ["о CYRILLIC SMALL LETTER O"]
