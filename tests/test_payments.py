"""Payment identifiers: found in running text, validated, normalised."""

import pytest

from mailwarden.payments import aba_is_valid, find_payment_ids, iban_is_valid


@pytest.mark.parametrize("iban", ["GB23 NCBK 4017 2231 8407 56", "DE81200500770045573921", "LT14 3865 0007 1442 0918"])
def test_valid_ibans(iban: str) -> None:
    assert iban_is_valid(iban)


@pytest.mark.parametrize("iban", ["GB24 NCBK 4017 2231 8407 56", "DE8120050077004557392", "XX00"])
def test_invalid_ibans(iban: str) -> None:
    assert not iban_is_valid(iban)


def test_identifiers_in_an_invoice_footer() -> None:
    text = ("Our bank details: Northern Counties Bank plc | Sort code 40-17-22 | Account no. 31840756 | "
            "IBAN GB23 NCBK 4017 2231 8407 56 | BIC NCBKGB2L")
    assert [str(p) for p in find_payment_ids(text)] == [
        "iban:GB23NCBK40172231840756", "ukacct:401722/31840756", "bic:NCBKGB2L"]


def test_a_word_after_the_iban_is_not_part_of_it() -> None:
    assert [str(p) for p in find_payment_ids("IBAN: LT14 3865 0007 1442 0918 BIC: BTPALT2X")] == [
        "iban:LT143865000714420918", "bic:BTPALT2X"]


def test_us_routing_numbers_are_checksummed() -> None:
    assert aba_is_valid("021000021")
    assert not aba_is_valid("021000022")
    assert [str(p) for p in find_payment_ids("Routing number: 021000021, account number 123456789")] == [
        "aba:021000021/123456789"]


def test_masked_form_shows_only_the_end() -> None:
    (iban,) = find_payment_ids("IBAN DE81 2005 0077 0045 5739 21")
    assert iban.masked == "iban …3921"
