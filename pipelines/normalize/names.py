"""Names of people and organizations, as typed into either system, -> one comparable form.

What people type (the seed document shows every one of these): full-width letters and
punctuation, traditional characters, stray spaces, doubled punctuation (",," and ",、"), and
the romanisation an input method pastes after a character (共青團(tuán)貴州省委). The
normalized name is simplified, half-width, without romanisation, with single punctuation
and no spaces between Chinese characters: 共青团贵州省委, 贵州省妇联.

Two implementations of the same steps, kept equal by a property test:
* `normalize_name_one` (Python `re`, one string at a time: the scalar form and the baseline);
* `normalize_name` (vectorized: distinct values only, Arrow RE2 regexes over whole arrays,
  one OpenCC call per batch).
Both use the same pattern strings, built below from explicit code-point ranges, because
Python's `re` and RE2 disagree on shorthand classes like `\\s` and `\\w`.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.normalize import WHITESPACE_CHARS, as_text, char_class, fixed_point, map_unique

# ---------------------------------------------------------------------------------------
# Character classes, as (first, last) code-point ranges rendered for both regex engines.

_CJK_IDEOGRAPHS = [(0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x323AF)]
# CJK symbols and punctuation (、。《》「」【】...), vertical forms, and the middle dot of
# minority names (阿依古丽·买买提): a space next to any of them is never wanted.
_WIDE_PUNCTUATION = [(0x3000, 0x303F), (0xFE30, 0xFE4F), (0xB7, 0xB7)]
_CONTROL = [(0x00, 0x1F), (0x7F, 0x9F)] + [(ord(c), ord(c)) for c in WHITESPACE_CHARS]
# Invisible format characters people paste along with text (zero-width space, BOM, soft
# hyphen, direction marks, tag characters), and private-use characters (nobody's text, and
# the alphabet of sealed names, pipelines/name_seal.py): removed.
_INVISIBLE = [(0xAD, 0xAD), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F),
              (0xFEFF, 0xFEFF), (0xE0000, 0xE007F), (0xE000, 0xF8FF), (0xF0000, 0x10FFFF)]
# Middle-dot look-alikes typed between the parts of a minority name.
_DOT_VARIANTS = [(0x2022, 0x2022), (0x2027, 0x2027), (0x2219, 0x2219), (0x22C5, 0x22C5),
                 (0x30FB, 0x30FB), (0xFF65, 0xFF65), (0x2E31, 0x2E31)]

CJK = char_class(_CJK_IDEOGRAPHS)
_WIDE_OR_OPENING = char_class(_CJK_IDEOGRAPHS + _WIDE_PUNCTUATION, "([")
_WIDE_OR_CLOSING = char_class(_CJK_IDEOGRAPHS + _WIDE_PUNCTUATION, ",;:!?)]")
# Separating punctuation after NFKC (，；：！？ have become ASCII). '.' is left out on
# purpose: "Co., Ltd." is not a doubled mark.
_SEPARATORS = "[,、。;:!?]"

# ---------------------------------------------------------------------------------------
# Pinyin romanisation: one to four syllables (tone marks, tone digits or neither; lower case
# as an input method writes them, or each capitalized as a person writes a name: 王芳(Wáng
# Fāng)) in round or square brackets right after a Chinese character. A syllable grammar
# rather than "any Latin letters" so that (贵阳), (筹), (GZ), (NGO) or (WANG) are kept.

_TONED_VOWELS = {
    "a": "aāáǎà", "e": "eēéěèê", "i": "iīíǐì", "o": "oōóǒò", "u": "uūúǔù", "ü": "üǖǘǚǜv",
}
_FINALS = [
    "iang", "iong", "uang", "ang", "eng", "ing", "ong", "iao", "ian", "uai", "uan", "üan",
    "ai", "ei", "ao", "ou", "an", "en", "in", "un", "ün", "er", "ia", "ie", "iu", "ua", "uo",
    "ui", "üe", "ue", "a", "o", "e", "i", "u", "ü",
]


def _final_pattern(final: str) -> str:
    return "".join(f"[{_TONED_VOWELS[c]}]" if c in _TONED_VOWELS else c for c in final)


_INITIALS = ["zh", "ch", "sh", *"bpmfdtnlgkhjqxrzcsyw"]
_FINALS_RE = "|".join(_final_pattern(f) for f in _FINALS)
# capitalized: an initial's first letter, or a final's first vowel (any tone) when there is no initial
_CAPITAL_INITIALS = "|".join(i.capitalize() for i in _INITIALS)
_CAPITAL_FINALS = "|".join(
    f"[{_TONED_VOWELS[f[0]].upper()}]{_final_pattern(f[1:])}" for f in _FINALS if f[0] in _TONED_VOWELS
)
_SYLLABLE = (
    f"(?:(?:{'|'.join(_INITIALS)})?(?:{_FINALS_RE})"
    f"|(?:{_CAPITAL_INITIALS})(?:{_FINALS_RE})|(?:{_CAPITAL_FINALS}))[1-5]?"
)
_ROMANISATION = f"{_SYLLABLE}(?:['’ ]?{_SYLLABLE}){{0,3}}"
_BRACKETED_ROMANISATION = rf"(?:\( ?{_ROMANISATION} ?\)|\[ ?{_ROMANISATION} ?\])"

# ---------------------------------------------------------------------------------------
# The pattern strings, shared by both implementations (RE2 has no look-behind, so the
# character before a match is captured and written back).

# Combining marks (accents, strokes, enclosing circles) on an ideograph: no Chinese name
# carries one (王́芳 is 王芳 with debris a keyboard or a "zalgo" paste left), and left on it
# they made another name to match and masked one character too many. On a Latin letter a
# mark is part of the letter (NFKC composes Zoé) and stays.
_COMBINING = [(0x300, 0x36F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xFE20, 0xFE2F)]
_MARKS_ON_IDEOGRAPH_RE = f"({CJK}){char_class(_COMBINING)}+"
_CONTROL_RE = char_class(_CONTROL)
_INVISIBLE_RE = char_class(_INVISIBLE)
_DOT_RE = char_class(_DOT_VARIANTS)
# An ASCII dot between two ideographs (a full-width one is ASCII after NFKC) is a middle dot
# typed without the middle-dot key (阿卜杜热合曼.买买提): no Chinese text writes a full stop
# so. Not 。, which ends a clause in a long name (组织。服务). One pass misses every other one
# of single-character parts (甲.乙.丙); the fixed point takes it.
_DOT_BETWEEN_IDEOGRAPHS_RE = f"({CJK})\\.({CJK})"
_ROMANISATION_RE = f"({CJK}) ?{_BRACKETED_ROMANISATION}"
_MULTISPACE_RE = " {2,}"
_SPACE_AFTER_RE = f"({_WIDE_OR_OPENING}) "
_SPACE_BEFORE_RE = f" ({_WIDE_OR_CLOSING})"
_DOUBLED_PUNCTUATION_RE = f"(?:{_SEPARATORS} ?)+({_SEPARATORS})"
_EDGES_RE = f"^(?:{_SEPARATORS}| )+|(?:{_SEPARATORS}| )+$"

# Python-side compiled forms.
_control = re.compile(_CONTROL_RE)
_marks_on_ideograph = re.compile(_MARKS_ON_IDEOGRAPH_RE)
_invisible = re.compile(_INVISIBLE_RE)
_dots = re.compile(_DOT_RE)
_dot_between_ideographs = re.compile(_DOT_BETWEEN_IDEOGRAPHS_RE)
_romanisation = re.compile(_ROMANISATION_RE)
_multispace = re.compile(_MULTISPACE_RE)
_space_after = re.compile(_SPACE_AFTER_RE)
_space_before = re.compile(_SPACE_BEFORE_RE)
_doubled_punctuation = re.compile(_DOUBLED_PUNCTUATION_RE)
_edges = re.compile(_EDGES_RE)

# Strings that no step but OpenCC can change (pure basic CJK ideographs) or that no step can
# change at all (plain ASCII words): the common case, short-circuited.
_PURE_CJK = re.compile("[\u4e00-\u9fff]+")
_PLAIN_ASCII = re.compile("[A-Za-z0-9]+(?: [A-Za-z0-9]+)*")


@functools.lru_cache(maxsize=1)
def _t2s():
    """The OpenCC traditional -> simplified converter; building it loads dictionaries."""
    import opencc

    return opencc.OpenCC("t2s")


# ---------------------------------------------------------------------------------------
# Scalar form.


def _clean_characters(text: str) -> str:
    """Invisible characters out, controls and odd spaces to ' ', NFKC, one middle dot."""
    text = _invisible.sub("", text)
    text = _control.sub(" ", text)
    text = _marks_on_ideograph.sub(r"\1", unicodedata.normalize("NFKC", text))
    return _dot_between_ideographs.sub(r"\1·\2", _dots.sub("·", text))


def _tidy_spacing_and_punctuation(text: str) -> str:
    text = _multispace.sub(" ", text)
    text = _space_after.sub(r"\1", text)
    text = _space_before.sub(r"\1", text)
    text = _doubled_punctuation.sub(r"\1", text)
    return _edges.sub("", text)


def _name_step(text: str) -> str | None:
    text = _clean_characters(text)
    text = _romanisation.sub(r"\1", text)
    text = _t2s().convert(text)
    text = _tidy_spacing_and_punctuation(text)
    return text or None


def normalize_name_one(value) -> str | None:
    """One name, normalized; None when missing or nothing is left (never raises).

    >>> normalize_name_one("共青團(tuán)貴州省委")
    '共青团贵州省委'
    """
    if not isinstance(value, str):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        value = as_text(pd.Series([value], dtype=object)).iloc[0]
        if not isinstance(value, str):
            return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the vectorized (Arrow) form replaces it
        value = value.encode("utf-8", "replace").decode("utf-8")
    if _PLAIN_ASCII.fullmatch(value):
        return value
    if _PURE_CJK.fullmatch(value):
        return fixed_point(_t2s().convert, value)
    return fixed_point(_name_step, value)


# ---------------------------------------------------------------------------------------
# Vectorized form.


def _replace(array: pa.Array, pattern: str, replacement: str) -> pa.Array:
    return pc.replace_substring_regex(array, pattern=pattern, replacement=replacement)


def _t2s_many(array: pa.Array) -> pa.Array:
    """OpenCC over many strings in one call: newline-joined (no input holds a newline after
    the control-character step, and no dictionary phrase spans one), then split back."""
    strings = array.to_pylist()
    converted: list[str] = []
    converter = _t2s()
    chunk = 50_000
    for start in range(0, len(strings), chunk):
        part = strings[start : start + chunk]
        out = converter.convert("\n".join(part)).split("\n")
        if len(out) != len(part):  # never expected; stay correct if OpenCC ever disagrees
            out = [converter.convert(s) for s in part]
        converted.extend(out)
    return pa.array(converted, type=pa.string())


def _name_step_many(texts: pd.Series) -> pd.Series:
    array = pa.array(texts.to_numpy(dtype=object), type=pa.string())
    array = _replace(array, _INVISIBLE_RE, "")
    array = _replace(array, _CONTROL_RE, " ")
    # NFKC through Python's unicodedata, not Arrow's utf8proc: the two ship different Unicode
    # versions, and the scalar and vectorized forms must agree on every character.
    array = pa.array(
        pd.Series(array.to_pylist(), dtype=object).map(
            lambda s: unicodedata.normalize("NFKC", s)
        ).to_numpy(dtype=object),
        type=pa.string(),
    )
    array = _replace(array, _MARKS_ON_IDEOGRAPH_RE, r"\1")
    array = _replace(array, _DOT_RE, "·")
    array = _replace(array, _DOT_BETWEEN_IDEOGRAPHS_RE, r"\1·\2")
    array = _replace(array, _ROMANISATION_RE, r"\1")
    array = _t2s_many(array)
    array = _replace(array, _MULTISPACE_RE, " ")
    array = _replace(array, _SPACE_AFTER_RE, r"\1")
    array = _replace(array, _SPACE_BEFORE_RE, r"\1")
    array = _replace(array, _DOUBLED_PUNCTUATION_RE, r"\1")
    array = _replace(array, _EDGES_RE, "")
    return pd.Series(array.to_numpy(zero_copy_only=False), index=texts.index, dtype="str")


def _normalize_distinct(distinct: pd.Series) -> pd.Series:
    """Normalize distinct, non-missing strings; the fixed point is reached per value."""
    result = distinct.copy()
    plain = distinct.str.fullmatch(_PLAIN_ASCII.pattern)
    pure_cjk = distinct.str.fullmatch(_PURE_CJK.pattern) & ~plain

    if pure_cjk.any():
        subset = distinct[pure_cjk]
        for _ in range(6):  # t2s of simplified text is itself; loop only for safety
            converted = pd.Series(
                _t2s_many(pa.array(subset.to_numpy(dtype=object), type=pa.string()))
                .to_numpy(zero_copy_only=False), index=subset.index, dtype="str")
            changed = converted != subset
            result[converted.index] = converted
            if not changed.any():
                break
            subset = converted[changed]

    pending = distinct[~plain & ~pure_cjk]
    for _ in range(6):
        if pending.empty:
            break
        stepped = _name_step_many(pending)
        result[stepped.index] = stepped
        still_changing = (stepped != pending) & (stepped.str.len() > 0)
        pending = stepped[still_changing]
    return result.where(result.str.len() > 0)


def normalize_name(values: pd.Series) -> pd.Series:
    """Normalized names (str dtype, NaN where missing or empty), index kept.

    Each distinct value is normalized once, so a column of 1M rows with a few thousand team
    names costs a few thousand normalizations.
    """
    text = as_text(values)
    return map_unique(text, _normalize_distinct)
