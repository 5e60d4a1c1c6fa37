"""Status codes and labels of both sources -> one vocabulary per kind of status.

The national system sends codes (albp0090 "1", albe0026 "4", albx0174 "2"), the provincial
platform Chinese labels (正常, 已登记, 已通过). Each becomes one English word of the staged
model (active, registered, effective, ...). The mappings are data: schemas/vocabularies.yaml.

Every function here is vectorized, never raises, returns NaN for a missing or unknown value
(validation decides what an unknown status means), and accepts its own output words, so it
is idempotent.
"""

from __future__ import annotations

import functools
import re

import pandas as pd
import yaml

from pipelines.normalize import map_each_distinct
from schemas import schema_file

VOCABULARIES_FILE = schema_file("vocabularies.yaml")


@functools.lru_cache(maxsize=1)
def vocabularies() -> dict[str, dict]:
    """The vocabularies as loaded from YAML: {kind: {words, national, provincial}}."""
    data = yaml.safe_load(VOCABULARIES_FILE.read_text(encoding="utf-8"))
    for kind, spec in data.items():
        words = set(spec["words"])
        for side in ("national", "provincial"):
            stray = set((spec.get(side) or {}).values()) - words
            if stray:  # a typo in the YAML must fail loudly, not map to a word nobody knows
                raise ValueError(f"vocabularies.yaml: {kind}.{side} maps to unknown {sorted(stray)}")
    return data


def _clean_code(value: str) -> str:
    # "1.0" is how a code column arrives once a missing value made it float.
    stripped = value.strip()
    return _FLOAT_CODE.sub(r"\1", stripped)


_FLOAT_CODE = re.compile(r"^([0-9]+)\.0+$")


@functools.lru_cache(maxsize=None)
def _lookup(kind: str, side: str) -> dict[str, str]:
    """Keys of `side` first, then the other side's and the words themselves: a column
    sometimes carries either (a test fixture, a re-run over staged data)."""
    spec = vocabularies()[kind]
    lookup: dict[str, str] = {}
    for other in ("national", "provincial"):
        if other != side:
            lookup.update({str(k): v for k, v in (spec.get(other) or {}).items()})
    lookup.update({str(k): v for k, v in (spec.get(side) or {}).items()})
    lookup.update({word: word for word in spec["words"]})
    lookup.update({word.lower(): word for word in spec["words"]})
    return lookup


@functools.lru_cache(maxsize=4096)
def _translate(kind: str, side: str, value: str) -> str | None:
    from pipelines.normalize.names import normalize_name_one

    lookup = _lookup(kind, side)
    for key in (_clean_code(value), normalize_name_one(value), value.strip().lower()):
        if key is not None and key in lookup:
            return lookup[key]
    return None


def map_vocabulary(values: pd.Series, kind: str, side: str) -> pd.Series:
    """Codes (side 'national') or labels (side 'provincial') of one `kind` -> its words
    (str, NaN where missing or unknown). Labels are compared after name normalization."""
    return map_each_distinct(values, functools.partial(_translate, kind, side))


def gender_from_code(values: pd.Series) -> pd.Series:
    """1/2 (national), 男/女 (provincial), M/F -> 'M'/'F'."""
    return map_vocabulary(values, "gender", "national")
