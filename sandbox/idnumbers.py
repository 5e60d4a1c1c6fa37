"""Identifier arithmetic for the synthetic world: resident ID numbers and credit codes.

Resident ID numbers (GB 11643-1999) are built as integers and checked vectorized: 6-digit
birth-place county, 8-digit birth date, 3-digit sequence (odd for men, even for women) and
the ISO 7064 MOD 11-2 check character. Unified social credit codes (GB 32100-2015) get the
organization code's own check (GB 11714) and the overall check character from
`stdnum.cn.uscc.calc_check_digit`.
"""

from __future__ import annotations

import numpy as np
from stdnum.cn import uscc

# Weights 2^(17-i) mod 11 for the 17 body digits, and the check character for sum mod 11.
_RIC_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
_RIC_CHECK_CHARS = np.array(list("10X98765432"))
_POW10 = 10 ** np.arange(16, -1, -1, dtype=np.int64)


def ric_body(county: np.ndarray, birth_yyyymmdd: np.ndarray, sequence: np.ndarray) -> np.ndarray:
    """The 17 body digits of resident ID numbers as int64 (county * 10^11 + date * 10^3 + seq)."""
    return (
        county.astype(np.int64) * 10**11
        + birth_yyyymmdd.astype(np.int64) * 10**3
        + sequence.astype(np.int64)
    )


def ric_check_chars(body: np.ndarray) -> np.ndarray:
    """The GB 11643 check character of each 17-digit body."""
    digits = (body[:, None] // _POW10[None, :]) % 10
    return _RIC_CHECK_CHARS[(digits * _RIC_WEIGHTS[None, :]).sum(axis=1) % 11]


# GB 11714 organization code: 8 characters, then a check over weights 3 7 9 10 5 8 4 2.
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
# Characters a USCC body may hold (stdnum's alphabet: no I O S V Z).
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _org_code_value(char: str) -> int:
    return int(char) if char.isdigit() else ord(char) - ord("A") + 10


def org_code_check(body8: str) -> str:
    """The GB 11714 check character of an 8-character organization code body."""
    remainder = 11 - sum(_org_code_value(c) * w for c, w in zip(body8, _ORG_WEIGHTS)) % 11
    return {10: "X", 11: "0"}.get(remainder, str(remainder))


def make_uscc(authority_type: str, region6: str, org_body8: str) -> str:
    """A valid USCC: '5' + type (1/2/3) + region + organization code + check character.

    Civil-affairs registrations start with 5; the second character is the kind of
    organization (1 social group, 2 private non-enterprise unit, 3 foundation).
    """
    organization_code = org_body8 + org_code_check(org_body8)
    partial = authority_type + region6 + organization_code
    return partial + uscc.calc_check_digit(partial)


def random_org_bodies(rng: np.random.Generator, size: int) -> list[str]:
    """Organization code bodies in the style civil affairs issued after 2015 ('MJ' + 6)."""
    alphabet = np.array(list(USCC_ALPHABET))
    tails = alphabet[rng.integers(0, len(USCC_ALPHABET), size=(size, 6))]
    return ["MJ" + "".join(row) for row in tails]
