"""Generated DMARC aggregate reports (both schemas; xml, gz or zip) for tests and bench/dmarc.py.

    aggregate_xml(records=1000, seed=1, schema="rfc7489"|"rfc9990", reporter=..., domain=...) -> bytes
    write_report(directory, name, xml, "xml"|"gz"|"zip") -> Path
    write_corpus(directory, small=1000, large_records=100_000, reporters=REPORTERS) -> list[Path]

The records vary the way real ones do: IPv4 and IPv6 sources, several DKIM results, override reasons,
envelope_to, a missing envelope_from (read from the last SPF result), result words in capitals.
"""

from __future__ import annotations

import gzip
import random
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

REPORTERS = ("google.com", "Yahoo", "protection.outlook.com", "mail.ru", "Enterprise Outlook")
HELD_OUT_REPORTERS = ("comcast.net", "Zoho Mail", "gmx.net", "t-online.de")
RESULTS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror")


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return f"2001:db8:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}"
    return f"{rng.choice((198, 203, 192, 185))}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _record(rng: random.Random, domain: str, rfc9990: bool) -> str:
    aligned_dkim = rng.random() < 0.6
    aligned_spf = rng.random() < 0.5
    disposition = "none" if aligned_dkim or aligned_spf else rng.choice(("none", "quarantine", "reject"))
    word = (lambda w: w.capitalize()) if rng.random() < 0.05 else (lambda w: w)
    reason = ""
    if rng.random() < 0.1:
        kind = rng.choice(("forwarded", "mailing_list", "local_policy", "other", "trusted_forwarder"))
        comment = "<comment>arrived via a list</comment>" if rng.random() < 0.5 else ""
        reason = f"<reason><type>{kind}</type>{comment}</reason>"
    envelope_from = "" if rng.random() < 0.2 else f"<envelope_from>bounce.{domain}</envelope_from>"
    envelope_to = f"<envelope_to>{rng.choice(('example.net', 'example.org'))}</envelope_to>" \
        if rng.random() < 0.3 else ""
    dkim = []
    for _ in range(rng.choice((0, 1, 1, 2))):
        signer = domain if rng.random() < 0.7 else rng.choice(("esp.example", "mailer.example.net"))
        selector = f"<selector>s{rng.randrange(5)}</selector>" if rfc9990 or rng.random() < 0.8 else ""
        human = "<human_result>2048-bit key</human_result>" if rng.random() < 0.1 else ""
        dkim.append(f"<dkim><domain>{signer}</domain>{selector}<result>{word(rng.choice(RESULTS[:3]))}</result>"
                    f"{human}</dkim>")
    spf_domain = f"bounce.{domain}" if rng.random() < 0.8 else "other.example"
    scope = "<scope>mfrom</scope>" if rng.random() < 0.7 else ""
    spf = f"<spf><domain>{spf_domain}</domain>{scope}<result>{word(rng.choice(RESULTS))}</result></spf>"
    return (f"<record><row><source_ip>{_ip(rng)}</source_ip><count>{rng.randrange(1, 500)}</count>"
            f"<policy_evaluated><disposition>{disposition}</disposition>"
            f"<dkim>{word('pass' if aligned_dkim else 'fail')}</dkim><spf>{'pass' if aligned_spf else 'fail'}</spf>"
            f"{reason}</policy_evaluated></row>"
            f"<identifiers>{envelope_to}{envelope_from}<header_from>{domain}</header_from></identifiers>"
            f"<auth_results>{''.join(dkim)}{spf}</auth_results></record>\n")


def iter_aggregate_xml(records: int = 1000, seed: int = 1, schema: str = "rfc7489", reporter: str = "google.com",
                       domain: str = "example.com", report_id: str | None = None) -> Iterator[bytes]:
    """The XML in pieces (a 100,000-record report is written without holding it whole)."""
    rng = random.Random(seed)
    rfc9990 = schema == "rfc9990"
    begin = 1_700_000_000 + rng.randrange(0, 86_400 * 300)
    namespace = ' xmlns="urn:ietf:params:xml:ns:dmarc-2.0"' if rfc9990 else ""
    version = "<version>1.0</version>" if rfc9990 or rng.random() < 0.5 else ""
    email = f"noreply-dmarc@{reporter.replace(' ', '').lower()}" if "." in reporter else "dmarc@reporter.example"
    generator = "<generator>reportgen 1.0</generator>" if rfc9990 else ""
    extra = ("<np>reject</np><testing>n</testing><discovery_method>treewalk</discovery_method>" if rfc9990
             else "<pct>100</pct>")
    yield (f'<?xml version="1.0" encoding="UTF-8"?>\n<feedback{namespace}>{version}<report_metadata>'
           f"<org_name>{escape(reporter)}</org_name><email>{email}</email>"
           f"<report_id>{report_id or f'{seed}-{rng.randrange(10**12)}'}</report_id>"
           f"<date_range><begin>{begin}</begin><end>{begin + 86_399}</end></date_range>{generator}"
           f"</report_metadata><policy_published><domain>{domain}</domain><adkim>r</adkim><aspf>r</aspf>"
           f"<p>{rng.choice(('none', 'quarantine', 'reject'))}</p><sp>none</sp>{extra}</policy_published>\n"
           ).encode()
    batch: list[str] = []
    for _ in range(records):
        batch.append(_record(rng, domain, rfc9990))
        if len(batch) >= 1000:
            yield "".join(batch).encode()
            batch = []
    yield ("".join(batch) + "</feedback>\n").encode()


def aggregate_xml(records: int = 10, seed: int = 1, schema: str = "rfc7489", reporter: str = "google.com",
                  domain: str = "example.com", report_id: str | None = None) -> bytes:
    return b"".join(iter_aggregate_xml(records, seed, schema, reporter, domain, report_id))


def write_report(directory: Path, name: str, pieces: Sequence[bytes] | Iterator[bytes], kind: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "gz":
        path = directory / f"{name}.xml.gz"
        with gzip.open(path, "wb", compresslevel=6) as out:
            for piece in pieces:
                out.write(piece)
    elif kind == "zip":
        path = directory / f"{name}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, archive.open(f"{name}.xml", "w") as out:
            for piece in pieces:
                out.write(piece)
    else:
        path = directory / f"{name}.xml"
        with path.open("wb") as out:
            for piece in pieces:
                out.write(piece)
    return path


def write_corpus(directory: Path, small: int = 1000, large_records: int = 100_000,
                 reporters: Sequence[str] = REPORTERS, seed: int = 7) -> tuple[Path | None, list[Path]]:
    """(the large report or None, the small reports): small ones cycle schemas, formats and reporters."""
    large = None
    if large_records:
        large = write_report(directory / "large", "large", iter_aggregate_xml(large_records, seed), "xml")
    paths = []
    for n in range(small):
        schema = ("rfc7489", "rfc9990")[n % 2]
        kind = ("xml", "gz", "zip")[n % 3]
        reporter = reporters[n % len(reporters)]
        pieces = iter_aggregate_xml(1 + (n * 7919) % 20, seed + n + 1, schema, reporter, f"d{n % 13}.example.com")
        paths.append(write_report(directory / "small", f"r{n:05d}", pieces, kind))
    return large, paths
