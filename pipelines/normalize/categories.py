"""Service categories -> the labels of the national service category list.

The national system sends category codes ("0004", lists of them for a team); the provincial
platform sends comma-separated Chinese labels, some of them older synonyms (卫健 for 卫生健康,
扶贫 or 乡村振兴 for 扶贫减贫, ...). Both become national labels; a team's categories are
joined by ',' in the national code order, without duplicates, and whatever maps to nothing
is kept aside in `unmapped_categories` rather than dropped silently.

The code list and the synonyms are data: schemas/categories.yaml.
"""

from __future__ import annotations

import functools
import json
import re

import numpy as np
import pandas as pd
import yaml

from pipelines.normalize import as_text, is_missing, map_each_distinct
from schemas import schema_file

CATEGORIES_FILE = schema_file("categories.yaml")

# Provincial labels are separated by commas (either width), enumeration commas, semicolons,
# slashes or spaces, depending on who typed them.
_LABEL_SEPARATORS = re.compile(r"[,，、;；/|\s]+")


@functools.lru_cache(maxsize=1)
def _load() -> tuple[dict[str, str], dict[str, str]]:
    data = yaml.safe_load(CATEGORIES_FILE.read_text(encoding="utf-8"))
    national = {str(code): str(label) for code, label in data["national"].items()}
    synonyms = {str(k): str(v) for k, v in (data.get("synonyms") or {}).items()}
    unknown = set(synonyms.values()) - set(national.values())
    if unknown:  # a typo in the YAML would silently send labels nowhere
        raise ValueError(f"categories.yaml maps synonyms onto unknown labels: {sorted(unknown)}")
    return national, synonyms


@functools.lru_cache(maxsize=1)
def brand_programmes() -> tuple[str, ...]:
    """The brand programmes of schemas/categories.yaml, in their order."""
    data = yaml.safe_load(CATEGORIES_FILE.read_text(encoding="utf-8"))
    return tuple(str(brand) for brand in data.get("brand_programmes") or ())


@functools.lru_cache(maxsize=1)
def measure_fields() -> dict[str, str]:
    """National label -> the professional field of the provincial measures it is counted
    under (法律服务 -> 司法), from schemas/categories.yaml; labels that are no field absent."""
    data = yaml.safe_load(CATEGORIES_FILE.read_text(encoding="utf-8"))
    fields = {str(label): str(field) for label, field in (data.get("measure_fields") or {}).items()}
    unknown = set(fields) - set(_load()[0].values())
    if unknown:
        raise ValueError(f"categories.yaml gives measure fields to unknown labels: {sorted(unknown)}")
    return fields


NATIONAL_CATEGORIES: dict[str, str] = dict(_load()[0])
"""National code -> label, in the national order ("0001" 社区服务 ... "0099" 其他)."""

NATIONAL_LABELS: tuple[str, ...] = tuple(NATIONAL_CATEGORIES.values())
_LABEL_RANK = {label: rank for rank, label in enumerate(NATIONAL_LABELS)}


def category_words() -> frozenset[str]:
    """Every label and synonym the sources write for a category."""
    national, synonyms = _load()
    return frozenset(synonyms) | frozenset(national.values())


@functools.lru_cache(maxsize=1)
def _token_lookup() -> dict[str, str]:
    """Every accepted token (code, national label, synonym) -> national label."""
    national, synonyms = _load()
    lookup = dict(synonyms)
    lookup.update({label: label for label in national.values()})
    lookup.update(national)
    return lookup


def _clean_code(token: str) -> str:
    token = token.strip()
    # Codes that travelled through a number lose their zeros: 4 -> "0004", 99 -> "0099".
    if token.isascii() and token.isdigit() and len(token) < 4:
        return token.zfill(4)
    return token


@functools.lru_cache(maxsize=8192)
def _label_of_token(token: str) -> str | None:
    """A raw token (code or label) -> national label, or None. Labels are compared after
    name normalization (繁體, full-width, spaces)."""
    from pipelines.normalize.names import normalize_name_one

    lookup = _token_lookup()
    label = lookup.get(_clean_code(token))
    if label is None:
        label = lookup.get(normalize_name_one(token) or "")
    return label


def national_code_to_label(values: pd.Series) -> pd.Series:
    """One national category code per row -> its label (labels and synonyms are accepted
    too, so the function is idempotent); NaN when missing or unknown."""
    return map_each_distinct(values, _label_of_token)


# ---------------------------------------------------------------------------------------
# Many categories per row.


def _tokens_of(value) -> list[str]:
    """A cell of a category column -> its raw tokens. Lists arrive as Python lists, numpy
    arrays (from Parquet), JSON text, or comma-separated text."""
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        return [t for item in value if not is_missing(item) for t in _tokens_of(item)]
    if is_missing(value):
        return []
    text = value if isinstance(value, str) else str(as_text([value]).iloc[0])
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return _tokens_of(parsed)
    return [t for t in _LABEL_SEPARATORS.split(text) if t]


def _categories_frame(values: pd.Series) -> pd.DataFrame:
    if not isinstance(values, pd.Series):
        values = pd.Series(list(values), dtype=object)
    row_count = len(values)
    categories = pd.Series(np.nan, index=np.arange(row_count), dtype="str")
    leftovers = categories.copy()

    # Explode over positions (not the caller's index, which may repeat).
    tokens = values.reset_index(drop=True).map(_tokens_of).explode().dropna()
    if not tokens.empty:
        token_text = as_text(tokens.astype(object))
        pieces = pd.DataFrame(
            {
                "row": tokens.index.to_numpy(),
                "token": token_text.to_numpy(dtype=object),
                "label": map_each_distinct(token_text, _label_of_token).to_numpy(dtype=object),
            }
        )
        mapped = pieces[pieces["label"].notna()].copy()
        mapped["rank"] = mapped["label"].map(_LABEL_RANK)
        mapped = mapped.drop_duplicates(["row", "label"]).sort_values(["row", "rank"])
        joined = mapped.groupby("row")["label"].agg(",".join)
        categories[joined.index] = joined

        unmapped = pieces[pieces["label"].isna()].drop_duplicates(["row", "token"])
        unmapped_joined = unmapped.groupby("row", sort=False)["token"].agg(",".join)
        leftovers[unmapped_joined.index] = unmapped_joined

    return pd.DataFrame(
        {"categories": categories.to_numpy(), "unmapped_categories": leftovers.to_numpy()},
        index=values.index,
    ).astype("str")


def national_codes_to_categories(values: pd.Series) -> pd.DataFrame:
    """Lists of national category codes (albe0014) -> [categories, unmapped_categories]:
    national labels joined by ',' in national order, deduplicated; NaN when none."""
    return _categories_frame(values)


def provincial_labels_to_categories(values: pd.Series) -> pd.DataFrame:
    """Provincial serviceTypes text ('助残,应急') -> [categories, unmapped_categories], the
    same shape as `national_codes_to_categories`; synonyms map onto national labels."""
    return _categories_frame(values)


def first_category(values: pd.Series) -> pd.Series:
    """The national label of the first label of each row (an activity's serviceType), or of
    a single national code (a project's albx0009); NaN when that label maps to nothing."""
    if not isinstance(values, pd.Series):
        values = pd.Series(list(values), dtype=object)
    first_tokens = values.map(lambda v: next(iter(_tokens_of(v)), None))
    return map_each_distinct(first_tokens.astype(object), _label_of_token)
