"""Sealed names (pipelines/name_seal.py): what matching compares is kept, what a reader sees is not."""

from __future__ import annotations

import itertools

import duckdb
import pandas as pd
import pytest

from pipelines.name_seal import seal_name, sealed_names, unseal_name, unsealed_names
from pipelines.normalize.names import normalize_name

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
