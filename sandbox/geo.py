"""Guizhou's administrative divisions, for the synthetic world.

The county list is read from python-stdnum's `stdnum/cn/loc.dat` (GB/T 2260 codes with the
years each was in force), so the world's codes are real: current counties for where people
live and teams work, and the codes in force in a birth year for the birth place inside a
resident ID number (a person born in 1980 in today's 播州区 carries 522121, not 520304).
The sources only ever show the four retired codes the contract maps to their successors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import stdnum.cn

from sandbox.clock import YEAR

PROVINCE_PREFIX = "52"

# The retired county codes the contract maps onto their successors; the only stale codes the
# sources carry in a row's region (older rows keep the code they were entered with).
RETIRED_TO_CURRENT = {
    "520114": "520115",
    "520221": "520204",
    "520222": "520281",
    "520522": "520581",
}
CURRENT_TO_RETIRED = {new: old for old, new in RETIRED_TO_CURRENT.items()}
RETIRED_SHARE = 0.3  # rows of a successor county that still show the retired code

# Counties of neighbouring provinces, for rows planted outside Guizhou.
OUTSIDE_PROVINCE_COUNTIES = ("500103", "500112", "510104", "510107", "530102", "450102", "430102")

PREFECTURE_SHORT_NAMES = {
    "5223": "黔西南州",
    "5226": "黔东南州",
    "5227": "黔南州",
}

_ENTRY = re.compile(r'^\s+(\d{4}) county="(.*)"$')
_PART = re.compile(r"^(?:\[(\d*)-(\d*)\])?(.+)$")
_FIRST_YEAR = 1900
_LAST_YEAR = 2100


@dataclass(frozen=True)
class County:
    code: str
    name: str
    prefecture_code: str
    prefecture_name: str


@dataclass(frozen=True)
class Geography:
    """The current counties, and the codes valid for a birth place year by year."""

    counties: tuple[County, ...]
    # (code, first year, last year) for every county-level code ever used in Guizhou.
    code_years: tuple[tuple[str, int, int], ...]

    @property
    def county_codes(self) -> np.ndarray:
        return np.array([c.code for c in self.counties])

    def birth_codes_for_year(self, year: int) -> np.ndarray:
        """County codes in force in `year` (a birth place in a resident ID number)."""
        codes = [code for code, first, last in self.code_years if first <= year <= last]
        return np.array(sorted(codes))

    def county(self, code: str) -> County:
        return _county_index(self)[code]


@lru_cache(maxsize=1)
def _county_index(geo: Geography) -> dict[str, County]:
    return {c.code: c for c in geo.counties}


def _parse_loc_dat(text: str) -> tuple[dict[str, str], list[tuple[str, str, int, int]]]:
    """Guizhou's entries in loc.dat: prefecture names, and (code, name, first, last) rows."""
    prefectures: dict[str, str] = {}
    rows: list[tuple[str, str, int, int]] = []
    in_guizhou = False
    for line in text.splitlines():
        if not line.startswith(" "):
            in_guizhou = line.startswith(PROVINCE_PREFIX + " ")
            continue
        match = _ENTRY.match(line)
        if not in_guizhou or not match:
            continue
        suffix, spec = match.groups()
        code = PROVINCE_PREFIX + suffix
        for part in spec.split(","):
            first, last, name = _PART.match(part).groups()
            first_year = int(first) if first else _FIRST_YEAR
            last_year = int(last) if last else _LAST_YEAR
            if suffix.endswith("00"):
                if last_year == _LAST_YEAR:
                    prefectures[code[:4]] = name
            elif name != "市辖区":
                rows.append((code, name, first_year, last_year))
    return prefectures, rows


@lru_cache(maxsize=1)
def guizhou() -> Geography:
    """Guizhou's counties, parsed once from the loc.dat shipped with python-stdnum."""
    text = (Path(stdnum.cn.__file__).parent / "loc.dat").read_text(encoding="utf-8")
    prefectures, rows = _parse_loc_dat(text)
    current = sorted({(code, name) for code, name, _, last in rows if last == _LAST_YEAR})
    counties = tuple(
        County(
            code=code,
            name=name,
            prefecture_code=code[:4],
            prefecture_name=prefectures.get(code[:4], ""),
        )
        for code, name in current
    )
    code_years = tuple(sorted({(code, first, last) for code, _, first, last in rows}))
    return Geography(counties=counties, code_years=code_years)


def prefecture_label(prefecture_code: str) -> str:
    """The name people write for a prefecture in a team name (黔南州, 遵义市)."""
    geo = guizhou()
    if prefecture_code in PREFECTURE_SHORT_NAMES:
        return PREFECTURE_SHORT_NAMES[prefecture_code]
    for county in geo.counties:
        if county.prefecture_code == prefecture_code:
            return county.prefecture_name
    return ""


def shown_county_codes(
    rng: np.random.Generator, counties: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """County codes as rows show them: a share of successor counties under their retired code.

    Returns the codes and a mask of the rows that got a retired code.
    """
    counties = np.asarray(counties, dtype="<U6")
    retired = np.array([CURRENT_TO_RETIRED.get(c, "") for c in counties], dtype="<U6")
    stale = (retired != "") & (rng.random(len(counties)) < RETIRED_SHARE)
    return np.where(stale, retired, counties), stale


def area_codes(
    rng: np.random.Generator, counties: np.ndarray, twelve_digit: np.ndarray
) -> np.ndarray:
    """Provincial areaCode values: 12-digit (county + town + village) or the bare county code."""
    counties = np.asarray(counties, dtype="<U6")
    if len(counties) == 0:
        return counties
    town = rng.integers(1, 25, size=len(counties))
    village = rng.integers(1, 40, size=len(counties))
    long_codes = np.strings.add(
        np.strings.add(counties, np.strings.zfill(town.astype("<U3"), 3)),
        np.strings.zfill(village.astype("<U3"), 3),
    )
    return np.where(np.asarray(twelve_digit, dtype=bool), long_codes, counties)


def dated_area_codes(
    rng: np.random.Generator, counties: np.ndarray, created: np.ndarray, as_of: int
) -> tuple[np.ndarray, np.ndarray]:
    """areaCode values of rows created at `created`: 12-digit on most rows, but on only 40% of
    rows older than three years. Returns the codes and the mask of the 12-digit ones."""
    old = np.asarray(created) < as_of - 3 * YEAR
    twelve = rng.random(len(old)) < np.where(old, 0.4, 0.95)
    return area_codes(rng, counties, twelve), twelve


def ids_by_county(frame: pd.DataFrame, id_column: str) -> dict[str, np.ndarray]:
    """The ids of a frame's rows grouped by their `county`."""
    return frame.groupby("county")[id_column].apply(lambda ids: ids.to_numpy()).to_dict()
