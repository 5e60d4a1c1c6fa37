"""Sealed names (pipelines/name_seal.py): what matching compares is kept, what a reader sees is not."""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines.name_seal import (
    seal_name,
    seal_suffix,
    sealed_names,
    sealed_suffixes,
    unseal_name,
    unseal_suffix,
    unsealed_names,
    unsealed_suffixes,
)
from pipelines.normalize.names import normalize_name
from tests.reference import sealed_id_suffix

KEY = "test-key-密钥"
NAMES = ["王芳", "王芳芳", "王方", "汪芳", "欧阳娜娜", "欧阳娜", "阿依古丽·买买提", "李𠇔", "Alice Wang", "张三1", "王"]


def _private_use(character: str) -> bool:
    return 0xF0000 <= ord(character) <= 0x10FFFD


def test_a_sealed_name_holds_none_of_its_characters():
    for name in NAMES:
        sealed = seal_name(name, KEY)
        assert len(sealed) == len(name)
        assert all(_private_use(c) for c in sealed), name
        assert not set(sealed) & set(name)


def test_the_key_turns_it_back_and_only_the_key():
    for name in NAMES:
        assert unseal_name(seal_name(name, KEY), KEY) == name
        assert unseal_name(seal_name(name, KEY), "another key") != name
    assert seal_name("王芳", KEY) != seal_name("王芳", "another key")


def test_the_seal_is_fixed_for_a_key():
    """A staged file sealed months ago and a page staged tonight must agree: the permutation
    comes from the key by standard primitives alone (a change of construction fails here)."""
    assert [hex(ord(c)) for c in seal_name("王芳", "test-key")] == ["0xf997c", "0x10cbc6"]


def test_a_name_never_sealed_is_left_as_it_is():
    assert unseal_name("王芳", KEY) == "王芳"
    frame = pd.Series(["李四", None])
    assert unsealed_names(frame, KEY).tolist()[0] == "李四"


def test_every_comparison_of_matching_gives_the_same_on_sealed_names():
    """Equality, length, one character dropped or apart (levenshtein) and the first character
    (the family name's block): what schemas/matching.yaml compares."""
    con = duckdb.connect()
    for left, right in itertools.combinations(NAMES, 2):
        sealed_left, sealed_right = seal_name(left, KEY), seal_name(right, KEY)
        clear, sealed = (con.execute("SELECT ? = ?, length(?) - length(?), levenshtein(?, ?), left(?, 1) = left(?, 1)",
                                     [a, b, a, b, a, b, a, b]).fetchone()
                         for a, b in ((left, right), (sealed_left, sealed_right)))
        assert clear == sealed, (left, right)


def test_columns_keep_their_missing_values_and_index():
    names = pd.Series(["王芳", None, "王芳", "李四"], index=[10, 11, 12, 13])
    sealed = sealed_names(names, KEY)
    assert list(sealed.index) == [10, 11, 12, 13]
    assert sealed.isna().tolist() == [False, True, False, False]
    assert sealed[10] == sealed[12] != sealed[13]
    assert unsealed_names(sealed, KEY).where(sealed.notna()).tolist()[::2] == ["王芳", "王芳"]


@pytest.mark.parametrize("typed", ["王\U000F0001芳", "\U0010FFFD王芳", "王\ue000芳"])
def test_normalized_names_hold_no_private_use_characters(typed):
    """Sealed characters are private-use ones: a name typed with one must lose it, or its
    unsealing would turn that character into another."""
    assert normalize_name(pd.Series([typed])).tolist() == ["王芳"]


# -- an ID number's last four ----------------------------------------------------------------

SUFFIXES = ["0000", "1234", "123X", "1235", "9990", "999X", "0012", "E678", "78", ""]


def test_a_sealed_last_four_keeps_each_positions_alphabet_and_comes_back():
    """Three sequence digits stay digits, the check character a digit or X: the suites' shape
    checks hold on sealed ends. The key, and only it, turns them back."""
    every_end = [f"{n:03d}{check}" for n in range(1000) for check in "0123456789X"]
    sealed = [seal_suffix(end, KEY) for end in every_end]
    assert len(set(sealed)) == len(every_end)  # a permutation: no two ends become one
    assert all(s[:3].isdigit() and (s[3].isdigit() or s[3] == "X") for s in sealed)
    assert sum(s == end for s, end in zip(sealed, every_end)) < len(every_end) / 100
    assert [unseal_suffix(s, KEY) for s in sealed] == every_end
    assert sum(unseal_suffix(s, "another key") == end for s, end in zip(sealed, every_end)) < len(every_end) / 100
    for end in SUFFIXES:
        assert unseal_suffix(seal_suffix(end, KEY), KEY) == end


def test_another_key_seals_otherwise_and_the_seal_is_fixed_for_a_key():
    assert [seal_suffix(end, KEY) for end in SUFFIXES[:4]] != [seal_suffix(end, "another key") for end in SUFFIXES[:4]]
    # a staged file sealed months ago and a page staged tonight must agree
    assert [seal_suffix(end, "test-key") for end in ("1234", "123X")] == ["4057", "4055"]


def test_a_passports_letters_stay_and_its_digits_are_sealed():
    sealed = seal_suffix("E678", KEY)
    assert sealed[0] == "E" and sealed[1:] != "678" and sealed[1:].isdigit()


def test_matchings_comparisons_of_the_ends_give_the_same_on_sealed_ones():
    """Equality, and first four + last four one character apart (schemas/matching.yaml's
    `ends_one_char_apart_typo_possible`): the seal keeps each position's sameness."""
    con = duckdb.connect()
    for left, right in itertools.combinations(SUFFIXES, 2):
        sealed_left, sealed_right = seal_suffix(left, KEY), seal_suffix(right, KEY)
        clear, sealed = (con.execute("SELECT ? = ?, levenshtein('5201' || ?, '5201' || ?) = 1", [a, b, a, b]).fetchone()
                         for a, b in ((left, right), (sealed_left, sealed_right)))
        assert clear == sealed, (left, right)


def test_suffix_columns_keep_their_missing_values_and_index():
    ends = pd.Series(["123X", None, "123X", "1234"], index=[10, 11, 12, 13], dtype="str")
    sealed = sealed_suffixes(ends, KEY)
    assert list(sealed.index) == [10, 11, 12, 13]
    assert sealed.isna().tolist() == [False, True, False, False]
    assert sealed[10] == sealed[12] != sealed[13]
    assert unsealed_suffixes(sealed, KEY).tolist()[::2] == ["123X", "123X"]


def test_the_ends_seal_is_the_one_documented():
    """tests/reference.py builds the permutation from its description alone (stdlib only)."""
    for end in [f"{n:03d}{check}" for n in range(0, 1000, 37) for check in "0X7"] + ["E678", "78"]:
        assert seal_suffix(end, KEY) == sealed_id_suffix(end, KEY), end


def test_a_changed_seal_makes_resolution_remake_the_golden_records(tmp_path, monkeypatch):
    """A sealed end cannot be told from a clear one (or from one sealed another way): golden
    records carried from the last sync must be remade when the seal changes, never stand
    beside ends sealed anew. (Staging needs nothing: its fingerprint holds all the code.)"""
    from pipelines import name_seal
    from pipelines.resolve.store import golden_code_fingerprint

    before = golden_code_fingerprint()
    changed = tmp_path / "name_seal.py"
    changed.write_text(Path(name_seal.__file__).read_text().replace("cert_suffix4/v1", "cert_suffix4/v2"))
    monkeypatch.setattr(name_seal, "__file__", str(changed))
    assert golden_code_fingerprint() != before
