"""Payment identifiers written in mail: IBANs (checksum-validated), UK sort code + account, SWIFT/BIC,
US routing (ABA checksum) + account. What a partner normally gets paid to is learned from past mail;
a message that brings different ones is a payment-instruction change.

Identifiers are normalised (no spaces, upper case) and typed: ``iban:GB23NCBK...``, ``ukacct:401722/31840756``,
``bic:NCBKGB2L``, ``aba:021000021/123456789``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Country code, check digits, then 11-30 alphanumerics, possibly grouped by spaces in fours.
_IBAN = re.compile(r"\b([A-Z]{2}\d{2}(?:[ \u00a0]?[A-Z0-9]{4}){2,7}(?:[ \u00a0]?[A-Z0-9]{1,4})?)\b")
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IS": 26, "IT": 27, "KW": 30, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18,
    "NO": 15, "PL": 28, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "TR": 26, "UA": 29,
}
_SORT_CODE = re.compile(r"sort[\s-]*code\s*[:.]?\s*(\d{2})[\s-]?(\d{2})[\s-]?(\d{2})", re.IGNORECASE)
_ACCOUNT = re.compile(r"(?:account|acct|a/c)(?:\s*(?:number|no\.?|#))?\s*[:.]?\s*(\d{8})\b", re.IGNORECASE)
_BIC = re.compile(r"\b(?:BIC|SWIFT)(?:\s*(?:code|/BIC))?\s*[:.]?\s*([A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?)\b")
_ROUTING = re.compile(r"(?:routing|ABA)(?:\s*(?:number|no\.?|#))?\s*[:.]?\s*(\d{9})\b", re.IGNORECASE)
_US_ACCOUNT = re.compile(r"(?:account|acct)(?:\s*(?:number|no\.?|#))?\s*[:.]?\s*(\d{6,17})\b", re.IGNORECASE)


@dataclass(frozen=True)
class PaymentId:
    kind: str  # iban | ukacct | bic | aba
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"

    @property
    def masked(self) -> str:
        """What a log or banner may show: the kind and the last four characters."""
        return f"{self.kind} …{self.value[-4:]}"


def iban_is_valid(iban: str) -> bool:
    """ISO 13616 length for the country and the mod-97 check."""
    iban = iban.replace(" ", "").upper()
    expected = _IBAN_LENGTHS.get(iban[:2])
    if expected is not None and len(iban) != expected:
        return False
    if not 15 <= len(iban) <= 34 or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(digits) % 97 == 1


def _longest_valid_iban(candidate: str) -> str | None:
    """The match may have swallowed a following word ("... 0918 BIC"): drop trailing groups until valid."""
    groups = candidate.split()
    while groups:
        value = "".join(groups)
        if iban_is_valid(value):
            return value
        groups.pop()
    return None


def aba_is_valid(routing: str) -> bool:
    if len(routing) != 9 or not routing.isdigit():
        return False
    d = [int(c) for c in routing]
    return (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])) % 10 == 0


def find_payment_ids(text: str, limit: int = 50) -> list[PaymentId]:
    """Every payment identifier in the text, validated where a checksum exists, in order, without repeats."""
    found: list[PaymentId] = []

    def add(kind: str, value: str) -> None:
        item = PaymentId(kind, value)
        if item not in found and len(found) < limit:
            found.append(item)

    for match in _IBAN.finditer(text.upper()):
        iban = _longest_valid_iban(match.group(1))
        if iban:
            add("iban", iban)
    for sort in _SORT_CODE.finditer(text):
        account = _ACCOUNT.search(text, sort.end(), sort.end() + 120) or _ACCOUNT.search(
            text, max(0, sort.start() - 120), sort.start())
        if account:
            add("ukacct", f"{''.join(sort.groups())}/{account.group(1)}")
    for match in _BIC.finditer(text):
        add("bic", match.group(1))
    for routing in _ROUTING.finditer(text):
        if aba_is_valid(routing.group(1)):
            account = _US_ACCOUNT.search(text, routing.end(), routing.end() + 120)
            add("aba", f"{routing.group(1)}/{account.group(1) if account else ''}")
    return found
