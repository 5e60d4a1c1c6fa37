"""Volunteers' full names and ID numbers' last four at rest: sealed under PII_HASH_KEY.

The raw landing is the one place source rows are kept as they came; nothing else outside the
warehouse's masked columns may hold a clear full name (the contract, "Privacy details"). Yet
matching compares names (equal, same length, one character dropped or apart, the same first
character, how common a name is) and the warehouse masks them keeping the family name. So a
staged or resolved name is its normalized form with every character replaced through a
permutation keyed by PII_HASH_KEY: each character always becomes the same private-use
character and no two become one, so every comparison above gives on the sealed names what it
gives on the clear ones, while the files hold no readable name. Only the holder of the key
turns a name back: the warehouse build to mask it, resolution to read its pinyin, the review
workbook to mask it.

What it is not: encryption of each name. One key seals every name the same way, so someone
holding the staged files (private to the pipeline's owner, like the raw landing) could count
characters and guess the commonest family names. It keeps names out of sight, out of greps
and scans, and out of any file copied for debugging; the files' permissions keep them private.

Sealed characters are those of the Basic Multilingual Plane and of plane 2 (the CJK extension
B onwards, where rare name characters live); anything else stays as it is. The sealed forms
lie in the two private-use planes (15 and 16), which no normalized name holds: so unsealing a
name that was never sealed (a test's frame, a file an older version wrote) leaves it as it was.

An ID number's last four characters (`cert_suffix4`) are sealed the same way, for the same
reason: beside the birth date, the county and the first four (all staged, all compared by
matching) they would make the whole number. Each of the four positions has a keyed
permutation of its own alphabet (the three sequence digits: the 10 digits; the check
character: the digits and X), so a sealed end is shaped like a clear one (the suites' checks
hold), two ends are equal, or one character apart, exactly when their clear forms are (all
that matching compares of them), and the key turns it back where it is shown: the
warehouse's `id_masked` and the review workbook. Unlike a name, a sealed end cannot be told
from a clear one: staged and resolved files written before the seal are never read with
sealed ones (staging's fingerprint holds the code, so new code stages everything again; the
golden records carried from one resolution to the next are refused when this module
changes, `pipelines.resolve.store.golden_code_fingerprint`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac

import numpy as np
import pandas as pd

from pipelines.normalize import map_unique

_BMP = np.arange(0x10000)
# Unicode scalar values of the BMP and plane 2 (surrogates are no characters; U+2FFFE and
# U+2FFFF are noncharacters): 63,488 + 65,534
_SEALED_FROM = np.concatenate([_BMP[(_BMP < 0xD800) | (_BMP > 0xDFFF)], np.arange(0x20000, 0x2FFFE)])
# the private-use planes 15 and 16, each but its last two code points (noncharacters)
_SEALED_INTO = np.concatenate([np.arange(0xF0000, 0xFFFFE), np.arange(0x100000, 0x10FFFE)])
# the construction's version: a new one must seal differently, never silently alike
_PURPOSE = b"pipelines.name_seal/v1"


# An ID number's last four: three sequence digits, then the check character
_SUFFIX_ALPHABETS = ("0123456789", "0123456789", "0123456789", "0123456789X")
_SUFFIX_PURPOSE = b"pipelines.name_seal/cert_suffix4/v1"


def _keyed_order(key: str, purpose: bytes, size: int) -> np.ndarray:
    """A permutation of range(`size`) fixed by `key` and `purpose`: the order of a SHAKE-256
    stream keyed by an HMAC of the key. Fixed by the standards, not by a library's random
    generator, so the same key seals alike on every machine and after every upgrade (a
    staged file sealed last month and a page staged tonight must agree); each purpose (names,
    each position of an ID's end) has an order of its own."""
    seed = hmac.new(key.encode("utf-8"), purpose, hashlib.sha256).digest()
    ranks = np.frombuffer(hashlib.shake_256(seed).digest(8 * size), dtype="<u8")
    return np.argsort(ranks, kind="stable")


@functools.lru_cache(maxsize=4)
def _tables(key: str) -> tuple[dict[int, int], dict[int, int]]:
    """(seal, unseal) translation tables of names for `key`: the keyed permutation, made once."""
    targets = _SEALED_INTO[_keyed_order(key, _PURPOSE, len(_SEALED_INTO))[: len(_SEALED_FROM)]]
    seal = dict(zip(_SEALED_FROM.tolist(), targets.tolist()))
    return seal, {sealed: clear for clear, sealed in seal.items()}


def seal_name(name: str, key: str) -> str:
    return name.translate(_tables(key)[0])


def unseal_name(name: str, key: str) -> str:
    return name.translate(_tables(key)[1])


def sealed_names(names: pd.Series, key: str) -> pd.Series:
    """Each name sealed (missing stays missing), index kept."""
    return _translated(names, _tables(key)[0])


def unsealed_names(names: pd.Series, key: str) -> pd.Series:
    """Each sealed name turned back (a name never sealed stays as it is), index kept."""
    return _translated(names, _tables(key)[1])


def _translated(names: pd.Series, table: dict[int, int]) -> pd.Series:
    return map_unique(names, lambda distinct: distinct.map(lambda name: name.translate(table)))


@functools.lru_cache(maxsize=4)
def _suffix_tables(key: str) -> tuple[tuple[dict[str, str], ...], tuple[dict[str, str], ...]]:
    """(seal, unseal): per position of an ID's last four, its character's sealed form (and
    back); a character outside the position's alphabet (a passport's letter) has none."""
    seal = []
    for position, alphabet in enumerate(_SUFFIX_ALPHABETS):
        order = _keyed_order(key, _SUFFIX_PURPOSE + bytes([position]), len(alphabet))
        seal.append({clear: alphabet[at] for clear, at in zip(alphabet, order.tolist())})
    return tuple(seal), tuple({sealed: clear for clear, sealed in table.items()} for table in seal)


def _positionally(value: str, tables: tuple[dict[str, str], ...]) -> str:
    """`value` with its first four characters each through its position's table (a
    character it has none for, and any after the fourth, as it is)."""
    turned = "".join(table.get(character, character) for character, table in zip(value, tables))
    return turned + value[len(tables):]


def seal_suffix(suffix: str, key: str) -> str:
    return _positionally(suffix, _suffix_tables(key)[0])


def unseal_suffix(suffix: str, key: str) -> str:
    return _positionally(suffix, _suffix_tables(key)[1])


def sealed_suffixes(suffixes: pd.Series, key: str) -> pd.Series:
    """Each ID number's last four sealed (missing stays missing), index kept."""
    return _positionally_each(suffixes, _suffix_tables(key)[0])


def unsealed_suffixes(suffixes: pd.Series, key: str) -> pd.Series:
    """Each sealed last four turned back (missing stays missing), index kept."""
    return _positionally_each(suffixes, _suffix_tables(key)[1])


def _positionally_each(suffixes: pd.Series, tables: tuple[dict[str, str], ...]) -> pd.Series:
    """Worked out per distinct value (at most 11,000 of a resident ID): a million rows take a
    factorization."""
    return map_unique(suffixes, lambda distinct: distinct.map(lambda suffix: _positionally(suffix, tables)))
