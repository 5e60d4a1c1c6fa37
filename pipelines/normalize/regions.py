"""Region codes (GB/T 2260) -> the current 6-digit county code, and the county list of Guizhou.

The provincial platform sends 12-digit statistical division codes (county + town + village),
older rows and the national system send 6-digit county codes, some of them retired: Guizhou
has renamed and merged counties (小河区 into 观山湖区 in 2012, 水城县 -> 水城区 in 2020, 盘县
-> 盘州市 in 2017, 黔西县 -> 黔西市 in 2021, ...). A retired code maps to its successor where
the successor is certain, so that one county is counted once.

The county list is not typed here: it is derived from python-stdnum's division table
(`stdnum/cn/loc.dat`, maintained from the GB/T 2260 lists, each name with its year range
like `[2012-]观山湖区`). Current = the last name of a code has no end year. Successors are
derived from the same table (a retired county whose name stem is that of exactly one current
county, e.g. 黔西县 -> 黔西市), plus a short list of documented renames whose names changed
completely (遵义县 -> 播州区, 小河区 -> 观山湖区, ...).
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from dataclasses import dataclass

import pandas as pd

from pipelines.normalize import (
    FULLWIDTH_TO_ASCII,
    arrow_replace,
    as_text,
    fold_fullwidth,
    is_missing,
    map_unique,
)

GUIZHOU = "52"

# Renames whose new name shares no stem with the old one (the stem rule cannot see them).
# Each is a whole county renamed or re-designated with the same territory.
DOCUMENTED_RENAMES = {
    # the four the contract names
    "520114": "520115",  # 小河区 merged into 观山湖区 (2012)
    "520221": "520204",  # 水城县 -> 水城区 (2020)
    "520222": "520281",  # 盘县 -> 盘州市 (2017)
    "520522": "520581",  # 黔西县 -> 黔西市 (2021)
    # found in the history of the same table
    "520202": "520222",  # 盘县特区 -> 盘县 (1999), then -> 盘州市
    "520321": "520304",  # 遵义县 -> 播州区 (2016)
    "522201": "520602",  # county-level 铜仁市 -> 碧江区 (2011)
    "522401": "520502",  # county-level 毕节市 -> 七星关区 (2011)
    "522501": "520402",  # county-level 安顺市 -> 西秀区 (2000)
}

# Administrative suffixes stripped to compare names across a change of status
# (县 -> 市, 特区 -> 区): 黔西县 and 黔西市 share the stem 黔西.
_SUFFIX = re.compile(r"(?:特区|自治县|自治州|地区|县|市|区)$")
_SPAN = re.compile(r"^\[(\d{4})?-(\d{4})?\](.*)$")


@dataclass(frozen=True)
class Division:
    code: str
    name: str  # the latest name
    names: tuple[str, ...]  # every name the code has had
    start: int | None  # first year of the latest name
    end: int | None  # last year of the latest name (None: still in use)

    @property
    def current(self) -> bool:
        return self.end is None


def _parse_names(raw: str) -> list[tuple[int | None, int | None, str]]:
    spans = []
    for part in raw.split(","):
        match = _SPAN.match(part)
        if match:
            start, end, name = match.groups()
            spans.append((int(start) if start else None, int(end) if end else None, name))
        else:
            spans.append((None, None, part))
    return spans


@functools.lru_cache(maxsize=1)
def _divisions() -> dict[str, Division]:
    """Every code under Guizhou in stdnum's loc.dat (provinces, prefectures, counties)."""
    text = (importlib.resources.files("stdnum") / "cn" / "loc.dat").read_text(encoding="utf-8")
    divisions: dict[str, Division] = {}
    in_province = False
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if not line.startswith(" "):
            in_province = line.startswith(GUIZHOU + " ")
            continue
        if not in_province:
            continue
        code_part, _, attributes = line.strip().partition(" ")
        match = re.search(r'county="([^"]*)"', attributes)
        if not match:
            continue
        spans = _parse_names(match.group(1))
        start, end, name = spans[-1]
        code = GUIZHOU + code_part
        divisions[code] = Division(code, name, tuple(s[2] for s in spans), start, end)
    return divisions


def _is_county_level(division: Division) -> bool:
    # xx00 is the prefecture itself; 市辖区 ("districts of the city", usually xx01) is a
    # statistical placeholder, not a county. Other xx01 codes are real: 钟山区, 兴义市.
    return division.code[4:] != "00" and division.name != "市辖区"


def _stem(name: str) -> str:
    previous = None
    while previous != name and len(name) > 1:
        previous, name = name, _SUFFIX.sub("", name) or name
    return name


@functools.lru_cache(maxsize=1)
def _successors() -> dict[str, str]:
    """Retired Guizhou county code -> its current successor, where certain."""
    divisions = _divisions()
    current = {c: d for c, d in divisions.items() if d.current and _is_county_level(d)}
    retired = {c: d for c, d in divisions.items() if not d.current and _is_county_level(d)}
    current_by_stem: dict[str, list[str]] = {}
    for code, division in current.items():
        # the latest name only: 钟山区 was once 水城特区, but 水城县's successor is 水城区
        current_by_stem.setdefault(_stem(division.name), []).append(code)

    direct: dict[str, str] = dict(DOCUMENTED_RENAMES)
    for code, division in retired.items():
        if code in direct:
            continue
        stems = {_stem(name) for name in division.names}
        candidates = {c for s in stems for c in current_by_stem.get(s, [])}
        if len(candidates) == 1:
            direct[code] = candidates.pop()
            continue
        # A county that became a city and later changed code again (毕节县 -> 毕节市 ->
        # 七星关区): follow the one retired code of the same stem that began the year this
        # one ended. Only from a 县 or 特区: a city never became a county, and 县级遵义市 was
        # split (红花岗区, 汇川区), so it has no certain successor.
        if not division.name.endswith(("县", "特区")) or division.end is None:
            continue
        later = {
            c for c, d in retired.items()
            if c != code and d.start == division.end
            and stems & {_stem(n) for n in d.names}
        }
        if len(later) == 1:
            direct[code] = later.pop()

    resolved: dict[str, str] = {}
    for code in direct:
        target, seen = code, set()
        while target in direct and target not in seen:
            seen.add(target)
            target = direct[target]
        if target in current:
            resolved[code] = target
    return resolved


@functools.lru_cache(maxsize=1)
def _counties_frame() -> pd.DataFrame:
    divisions = _divisions()
    rows = []
    for code, division in sorted(divisions.items()):
        if not (division.current and _is_county_level(division)):
            continue
        prefecture = divisions.get(code[:4] + "00")
        if prefecture is None or not prefecture.current:
            continue
        rows.append((code, division.name, code[:4], prefecture.name))
    return pd.DataFrame(
        rows, columns=["region_code", "region_name", "prefecture_code", "prefecture_name"]
    ).astype("str")


def guizhou_counties() -> pd.DataFrame:
    """Every current county-level division of Guizhou: [region_code, region_name,
    prefecture_code, prefecture_name], ordered by code."""
    return _counties_frame().copy()


@functools.lru_cache(maxsize=1)
def _current_codes() -> frozenset[str]:
    return frozenset(_counties_frame()["region_code"])


# ---------------------------------------------------------------------------------------
# Normalizing codes.

_NOT_DIGIT = re.compile(r"[^0-9]")
# A code a spreadsheet turned into a number and back to text (520102.0, 520102001001.00): the
# point and its zeros are no digits of the code (read as digits, 5201020 was no code at all).
_DECIMAL_ZEROS = re.compile(r"\.0+$")


def normalize_region_one(value) -> str | None:
    """One region code: digits only, 12 (or 9) digits cut to 6, retired -> successor."""
    if is_missing(value):
        return None
    text = value if isinstance(value, str) else str(as_text([value]).iloc[0])
    digits = _NOT_DIGIT.sub("", _DECIMAL_ZEROS.sub("", text.translate(FULLWIDTH_TO_ASCII)))
    if len(digits) in (9, 12):
        digits = digits[:6]
    if not digits:
        return None
    return _successors().get(digits, digits)


def _normalize_distinct(distinct: pd.Series) -> pd.Series:
    """Vectorized `normalize_region_one` (Arrow RE2; successors by a small lookup)."""
    digits = arrow_replace(arrow_replace(fold_fullwidth(distinct), _DECIMAL_ZEROS.pattern, ""), "[^0-9]", "")
    digits = arrow_replace(digits, "^([0-9]{6})(?:[0-9]{3}|[0-9]{6})$", r"\1")
    successors = _successors()
    retired = digits.isin(list(successors)).to_numpy(dtype=bool)
    if retired.any():
        digits = digits.copy()
        digits[retired] = digits[retired].map(successors)
    return digits.where(digits.str.len() > 0)


def normalize_region(values: pd.Series) -> pd.Series:
    """Region codes -> current 6-digit county codes (str, NaN when empty). Codes that are not
    county codes of Guizhou are kept cleaned as given, for validation to judge."""
    return map_unique(as_text(values), _normalize_distinct)


def is_guizhou(values: pd.Series) -> pd.Series:
    """True where the value is (or normalizes to) a current county code of Guizhou."""
    codes = normalize_region(values)
    return codes.isin(_current_codes()).astype(bool)
