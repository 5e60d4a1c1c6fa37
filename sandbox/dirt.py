"""The ways people and old client apps spoil text, applied to chosen rows of the world.

Each function takes one clean value and returns it spoiled; the generator applies them to a
small random subset of rows (so they need not be vectorized) and records which spoiling
each row got in the truth's `dirt` column. Every function keeps the value recoverable by
the normalization the contract asks for: the truth is the clean value.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import opencc
from pypinyin import Style, pinyin

from sandbox.names import HOMOPHONES

_FULLWIDTH = {code: code + 0xFEE0 for code in range(0x21, 0x7F)} | {0x20: 0x3000}


@lru_cache(maxsize=1)
def _s2t() -> opencc.OpenCC:
    return opencc.OpenCC("s2t")


def traditional(text: str) -> str:
    """The text in traditional characters (贵州省妇联 → 貴州省婦聯)."""
    return _s2t().convert(text)


def romanised(text: str, rng: np.random.Generator, max_marks: int = 2) -> str:
    """Traditional text with input-method pinyin pasted after some characters.

    The pattern of the seed text: 貴州省婦聯(lián) — a traditional character followed by its
    toned pinyin in ASCII brackets. Characters whose traditional form differs are marked first.
    """
    converted = traditional(text)
    positions = [i for i, (s, t) in enumerate(zip(text, converted)) if s != t and t.strip()]
    if not positions:
        positions = [i for i, c in enumerate(converted) if "\u4e00" <= c <= "\u9fff"]
    if not positions:
        return converted
    count = min(len(positions), int(rng.integers(1, max_marks + 1)))
    marked = set(rng.choice(positions, size=count, replace=False).tolist())
    out = []
    for i, char in enumerate(converted):
        out.append(char)
        if i in marked:
            out.append("(" + pinyin(text[i], style=Style.TONE)[0][0] + ")")
    return "".join(out)


def fullwidth(text: str) -> str:
    """ASCII letters, digits and spaces turned into their full-width forms (１２３Ｘ)."""
    return text.translate(_FULLWIDTH)


def spaced(text: str, rng: np.random.Generator) -> str:
    """One or two spaces typed inside the text ('520102 199001011234')."""
    cuts = sorted(rng.choice(np.arange(1, len(text)), size=min(2, len(text) - 1), replace=False))
    pieces, last = [], 0
    for cut in cuts:
        pieces.append(text[last:cut])
        last = cut
    pieces.append(text[last:])
    return " ".join(pieces)


def stray_spaces(name: str, rng: np.random.Generator) -> str:
    """A person's name with a stray half- or full-width space ('王 伟', ' 李娜', '王　伟')."""
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return name[0] + " " + name[1:]
    if kind == 1:
        return " " + name + " "
    return name[0] + "\u3000" + name[1:]


def doubled_punctuation(text: str, rng: np.random.Generator) -> str:
    """',,' dropped into the text the way conversion debris leaves it (妇联,,巾帼…)."""
    cut = int(rng.integers(2, max(3, len(text) - 1)))
    return text[:cut] + ",," + text[cut:]


def homophone(name: str, surname_length: int, rng: np.random.Generator) -> str | None:
    """The name with one given-name character typed as a homophone (小明 → 晓明), or None."""
    candidates = [i for i in range(surname_length, len(name)) if name[i] in HOMOPHONES]
    if not candidates:
        return None
    i = int(rng.choice(candidates))
    return name[:i] + HOMOPHONES[name[i]] + name[i + 1 :]


def dropped_character(name: str, surname_length: int, rng: np.random.Generator) -> str | None:
    """The name with one given-name character left out (张小明 → 张明), or None if too short."""
    if len(name) - surname_length < 2:
        return None
    i = int(rng.integers(surname_length, len(name)))
    return name[:i] + name[i + 1 :]


def mistyped_digit(number: str, rng: np.random.Generator) -> str:
    """One of the first 17 digits changed: the GB 11643 check character no longer fits."""
    i = int(rng.integers(0, 17))
    new_digit = (int(number[i]) + int(rng.integers(1, 10))) % 10
    return number[:i] + str(new_digit) + number[i + 1 :]


def mistyped_date(yyyymmdd: str, rng: np.random.Generator) -> str:
    """A birth date typed wrong but still a real date: day and month swapped, or a day off."""
    year, month, day = int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:])
    if day <= 12 and day != month and rng.random() < 0.5:
        month, day = day, month
    elif rng.random() < 0.5 and not (month == 2 and day == 29):
        year += int(rng.choice([-1, 1]))
    else:
        day = day + 1 if day < 28 else day - 1
    return f"{year:04d}{month:02d}{day:02d}"


def phone_as_typed(phone: str, rng: np.random.Generator) -> str:
    """A mobile number in one of the ways people type it (+86 138 1234 5678, 138-1234-5678)."""
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}"
    if kind == 1:
        return f"{phone[:3]}-{phone[3:7]}-{phone[7:]}"
    return f"{phone[:3]} {phone[3:7]} {phone[7:]}"


def masked_number(number: str) -> str:
    """The national masking of a certificate number: first 4, ten '*', last 4."""
    return number[:4] + "*" * 10 + number[-4:]


def masked_phone(phone: str) -> str:
    """The national masking of a phone: 138****5678."""
    return phone[:3] + "****" + phone[-4:]
