"""Domain similarity engine: recall on dnstwist's permutations, precision on popular domains, speed.

    python3 bench/domains.py                 # everything (a few minutes on two cores)
    python3 bench/domains.py recall precision speed dnstwist

recall     20 protected domains (the scenario organisation and partners, the modern-ham organisation and
           partners, nine often-impersonated brands); every permutation dnstwist generates with the fuzzers
           below must come back as a lookalike of the domain it was made from. tld-swap uses the 60
           commonest public suffixes of the Tranco list as its dictionary (dnstwist ships none).
precision  protect the first 200 domains of ../shared/corpora/domains/tranco-top10k.txt, check the other
           9,800 with no allow-list: every flagged pair is printed; the same label under another public
           suffix (google.com / google.de) counts as correct.
speed      median time to check one domain never seen before against 1,000 / 10,000 / 100,000 protected
           domains (the Tranco list, then made-up names), index build time and memory (tracemalloc).
dnstwist   the generate-then-look-up approach on the same machine: dnstwist permutations of every protected
           domain in a dict, build time and memory per protected domain, and the look-up time.

dnstwist is a bench/test dependency only (``pip install -e '.[test]'``).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from mailwarden.domains import DomainIndex
from mailwarden.domains.names import split_host

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TRANCO = SHARED / "corpora" / "domains" / "tranco-top10k.txt"

RECALL_DOMAINS = [
    "marlowfenwick.co.uk", "mfinstruments.com", "castlegatepolymers.co.uk", "veltro-electronics.de",
    "bramwellfreight.com", "ashdownpryce.co.uk", "ledgerline.io", "ardentwell.co.uk", "brennockgeo.co.uk",
    "northwaycost.co.uk", "hartmann-bauphysik.de", "paypal.com", "microsoft.com", "apple.com", "amazon.com",
    "google.com", "docusign.net", "dropbox.com", "linkedin.com", "netflix.com",
]
FUZZERS = ["addition", "bitsquatting", "homoglyph", "hyphenation", "insertion", "omission", "repetition",
           "replacement", "subdomain", "transposition", "vowel-swap", "tld-swap"]
SIZES = (1_000, 10_000, 100_000)


def tranco() -> list[str]:
    return [line.strip().lower() for line in TRANCO.read_text(encoding="utf-8").splitlines() if line.strip()]


def common_suffixes(count: int = 60) -> list[str]:
    found: Counter[str] = Counter()
    for domain in tranco():
        name = split_host(domain)
        if name is not None and name.suffix_kind == "icann":
            found[name.suffix] += 1
    return [suffix for suffix, _ in found.most_common(count)]


def permutations(domain: str, tlds: list[str]) -> list[tuple[str, str]]:
    """(fuzzer, candidate) pairs dnstwist generates for one domain."""
    import dnstwist

    fuzzer = dnstwist.Fuzzer(domain, tld_dictionary=list(tlds))
    fuzzer.generate(fuzzers=FUZZERS)
    return [(p["fuzzer"], p["domain"]) for p in fuzzer.domains]


# --- recall ----------------------------------------------------------------------------------------

def recall() -> None:
    index = DomainIndex(RECALL_DOMAINS)
    tlds = common_suffixes()
    total: Counter[str] = Counter()
    right: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    missed: dict[str, list[str]] = {}
    for domain in RECALL_DOMAINS:
        for fuzzer, candidate in permutations(domain, tlds):
            if index.is_known(candidate):
                continue  # vowel-swap and friends also give back the domain itself
            total[fuzzer] += 1
            found = index.check(candidate)
            if found is not None and found.lookalike_of == domain:
                right[fuzzer] += 1
            else:
                wrong[fuzzer] += found is not None
                missed.setdefault(fuzzer, []).append(candidate)
    print(f"## Recall on dnstwist permutations of {len(RECALL_DOMAINS)} protected domains\n")
    print("| fuzzer | permutations | recognised | wrong domain | recall |")
    print("|---|---:|---:|---:|---:|")
    for fuzzer in FUZZERS:
        print(f"| {fuzzer} | {total[fuzzer]} | {right[fuzzer]} | {wrong[fuzzer]} | "
              f"{100 * right[fuzzer] / max(1, total[fuzzer]):.2f}% |")
    all_total, all_right = sum(total.values()), sum(right.values())
    print(f"| **all** | {all_total} | {all_right} | {sum(wrong.values())} | "
          f"{100 * all_right / max(1, all_total):.2f}% |\n")
    for fuzzer, names in missed.items():
        print(f"missed {fuzzer}: {', '.join(sorted(names)[:15])}{' ...' if len(names) > 15 else ''}")
    print()


# --- precision -------------------------------------------------------------------------------------

def precision(protected_count: int = 200) -> None:
    domains = tranco()
    index = DomainIndex(domains[:protected_count])
    checked = same_label = 0
    flagged = []
    for domain in domains[protected_count:]:
        checked += 1
        found = index.check(domain)
        if found is None:
            continue
        name, imitated = split_host(domain), split_host(found.lookalike_of)
        if name is not None and imitated is not None and name.label == imitated.label:
            same_label += 1
        else:
            flagged.append(found)
    print(f"## Precision: {protected_count} Tranco domains protected, the other {checked} checked\n")
    print(f"same label under another suffix (correct): {same_label}")
    print(f"flagged otherwise: {len(flagged)} of {checked} = {100 * len(flagged) / checked:.2f}% "
          f"(target at most 0.5%)\n")
    print("| candidate | lookalike of | technique | score | detail |")
    print("|---|---|---|---:|---|")
    for found in sorted(flagged, key=lambda f: (f.technique, f.domain)):
        print(f"| {found.domain} | {found.lookalike_of} | {found.technique} | {found.score} | {found.detail} |")
    print()


# --- speed -----------------------------------------------------------------------------------------

_CONSONANTS = "bcdfghjklmnprstvwz"
_VOWELS = "aeiou"


def made_up_domains(count: int, seed: int, suffixes: list[str]) -> list[str]:
    """Pronounceable names under common suffixes, to fill a protected set past the Tranco list."""
    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(len(suffixes))]
    found: set[str] = set()
    while len(found) < count:
        label = "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(rng.randint(3, 7)))
        if rng.random() < 0.15:
            cut = rng.randint(2, len(label) - 2)
            label = label[:cut] + "-" + label[cut:]
        found.add(f"{label}.{rng.choices(suffixes, weights)[0]}")
    return sorted(found)


def _typo(domain: str, rng: random.Random) -> str:
    label, _, suffix = domain.partition(".")
    i = rng.randrange(len(label))
    change = rng.choice(("omit", "insert", "replace", "swap"))
    if change == "omit" and len(label) > 3:
        label = label[:i] + label[i + 1:]
    elif change == "insert":
        label = label[:i] + rng.choice(_CONSONANTS) + label[i:]
    elif change == "swap" and i + 1 < len(label):
        label = label[:i] + label[i + 1] + label[i] + label[i + 2:]
    else:
        label = label[:i] + rng.choice(_VOWELS) + label[i + 1:]
    return f"{label.strip('-') or 'x'}.{suffix}"


def _median_us(check: Callable[[str], object], candidates: Iterable[str]) -> tuple[float, float]:
    timings = []
    for candidate in candidates:
        start = time.perf_counter_ns()
        check(candidate)
        timings.append(time.perf_counter_ns() - start)
    timings.sort()
    return statistics.median(timings) / 1000, timings[int(len(timings) * 0.99)] / 1000


def speed_candidates(protected: list[str], count: int, seed: int) -> list[str]:
    """Half unrelated names never seen before, half typos of protected names (found by the index)."""
    rng = random.Random(seed)
    unrelated = made_up_domains(count // 2, seed + 1, common_suffixes())
    typos = [_typo(rng.choice(protected), rng) for _ in range(count // 2)]
    known = set(protected)
    return [c for c in unrelated + typos if c not in known]


def clear_caches() -> None:
    """Forget every name seen so far, so a build or a check pays for its own parsing."""
    from mailwarden import urls
    from mailwarden.domains import combosquat, names, skeleton

    for cached in (names._split, skeleton.plain, skeleton.skeleton, combosquat.split_words, urls._to_ascii_host,
                   urls._registrable_domain, urls.public_suffix):
        cached.cache_clear()


def speed() -> None:
    base = tranco()
    filler = made_up_domains(max(SIZES), 20260301, common_suffixes())
    print("## Speed: one check of a domain never seen before\n")
    print("| protected domains | build | index memory | median check | 99th percentile |")
    print("|---:|---:|---:|---:|---:|")
    for size in SIZES:
        protected = (base + [d for d in filler if d not in set(base)])[:size]
        candidates = speed_candidates(protected, 4000, size)
        clear_caches()
        start = time.perf_counter()
        index = DomainIndex(protected)
        build = time.perf_counter() - start
        clear_caches()
        median, p99 = _median_us(index.check, candidates)
        del index
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        index = DomainIndex(protected)
        memory = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        del index
        print(f"| {size:,} | {build:.2f} s | {memory / 2**20:.0f} MiB | {median:.1f} µs | {p99:.1f} µs |")
    print()


SCENARIO_LOOKALIKES = [
    "marlowfenvvick.co.uk", "castlegate-billing-portal.com", "ledger-line.io", "ledgerline.io.account-verify.net",
    "castlegatepolymer.co.uk", "xn--veltr-electronics-3co.de", "castlegatepolyrners.co.uk", "ashdownpryce.com",
    "mfinstruments-it.com", "ashdownpryce.co",
]
SCENARIO_PROTECTED = ["marlowfenwick.co.uk", "mfinstruments.com", "castlegatepolymers.co.uk",
                      "castlegate-polymers.com", "veltro-electronics.de", "veltro.eu", "bramwellfreight.com",
                      "ashdownpryce.co.uk", "ledgerline.io"]


def _permutation_table(protected: list[str], tlds: list[str]) -> dict[str, str]:
    table: dict[str, str] = {}
    for domain in protected:
        for _, candidate in permutations(domain, tlds):
            table.setdefault(candidate, domain)
    return table


def _traced(build: Callable[[], object]) -> tuple[object, float, int]:
    """What ``build`` returns, how long it took (untraced) and the memory it keeps (traced)."""
    clear_caches()
    start = time.perf_counter()
    build()
    seconds = time.perf_counter() - start
    clear_caches()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    built = build()
    memory = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return built, seconds, memory


def dnstwist_speed(sample: int = 100) -> None:
    """dnstwist's way: generate every permutation of every protected domain up front, then look names up."""
    protected = tranco()[:sample]
    tlds = common_suffixes()
    table, their_build, their_memory = _traced(lambda: _permutation_table(protected, tlds))
    ours, our_build, our_memory = _traced(lambda: DomainIndex(protected))
    assert isinstance(table, dict) and isinstance(ours, DomainIndex)
    candidates = speed_candidates(protected, 4000, 7)
    their_median, _ = _median_us(table.get, candidates)
    clear_caches()
    our_median, _ = _median_us(ours.check, candidates)
    print(f"## dnstwist's generate-then-look-up, measured on the first {sample} Tranco domains\n")
    print("| approach | build per protected domain | memory per protected domain | median check | "
          "100,000 protected: build, memory |")
    print("|---|---:|---:|---:|---:|")
    scale = 100_000 / sample
    for name, build, memory, median in (("dnstwist permutations in a dict", their_build, their_memory, their_median),
                                        ("mailwarden DomainIndex", our_build, our_memory, our_median)):
        print(f"| {name} | {1000 * build / sample:.2f} ms | {memory / sample / 2**10:.1f} KiB | {median:.2f} µs | "
              f"{build * scale:,.0f} s, {memory * scale / 2**30:.1f} GiB |")
    print(f"\nA check takes {our_median / their_median:.0f} times as long as a dict look-up; building takes "
          f"{their_build / our_build:.0f} times less time and {their_memory / our_memory:.0f} times less memory "
          f"({len(table) / sample:,.0f} permutations per protected domain).\n")
    scenario = _permutation_table(SCENARIO_PROTECTED, tlds)
    index = DomainIndex(SCENARIO_PROTECTED)
    print("| scenario lookalike | in dnstwist's permutations | mailwarden |")
    print("|---|---|---|")
    for candidate in SCENARIO_LOOKALIKES:
        found = index.check(candidate)
        ours_text = f"{found.lookalike_of} ({found.technique})" if found else "not found"
        print(f"| {candidate} | {scenario.get(candidate, 'not listed')} | {ours_text} |")
    print()


def main(argv: list[str]) -> None:
    parts = argv or ["recall", "precision", "speed", "dnstwist"]
    actions: dict[str, Callable[[], None]] = {"recall": recall, "precision": precision, "speed": speed,
                                              "dnstwist": dnstwist_speed}
    for part in parts:
        if part not in actions:
            raise SystemExit(f"unknown part {part!r}: choose from {', '.join(actions)}")
        actions[part]()


if __name__ == "__main__":
    main(sys.argv[1:])
