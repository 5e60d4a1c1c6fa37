"""Transforms that make several canonical columns at once from several source fields.

* `person_identity`: a volunteer's certificate, gender, birth date and phone. Clear numbers
  are normalized, hashed and dropped here; what is kept is what masking keeps (the last four
  sealed, pipelines/name_seal.py) and what a valid resident ID says (birth date, gender).
* `uscc`: an organization's unified social credit code and whether it is valid.
* `national_categories` / `provincial_categories`: service category codes or labels onto
  the national list.

Each returns a `Derived`: the columns, and per source field (by its role in the mapping)
the rows whose value was there but unusable, for the mapping's `on_error` to decide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.name_seal import sealed_suffixes
from pipelines.normalize import categories, ids, phones, statuses
from pipelines.normalize.dates import parse_date
from pipelines.privacy import shaped_like_a_personal_number, visible_ends
from pipelines.staging.transforms import (
    TEXT,
    TEXT_OR_NUMBER,
    Context,
    Reason,
    _with_fast_path,
    dated,
    as_text,
    hashed,
    masked_personal_numbers,
)


@dataclass
class Derived:
    columns: pd.DataFrame
    failed: dict[str, pd.Series] = field(default_factory=dict)  # role -> rows unusable
    # role -> rows of `failed` with a reason of their own
    reasons: dict[str, Reason | list[Reason]] = field(default_factory=dict)


@dataclass(frozen=True)
class DerivedTransform:
    make: Callable[[pd.DataFrame, dict, Context], Derived]
    accepts: dict[str, frozenset[str]]  # role -> the JSON kinds of a usable value
    expected: dict[str, str]  # role -> what a valid value is


def _field(fields: pd.DataFrame, role: str) -> pd.Series:
    return as_text(fields[role]) if role in fields else pd.Series(np.nan, index=fields.index, dtype="str")


def _resident_ids_of_unknown_type(cert_type: pd.Series, raw_number: pd.Series, ctx: Context) -> pd.Series:
    """`cert_type` with `resident_id` where the type is missing or unreadable (`other`: 其他,
    身份证号码, a national 99) and the number is a valid resident ID number: operators fill
    the number and skip or misname the type, and such a number was hashed as some other
    certificate's, never valid, so the person's accounts did not meet by the contract's
    rule 1. A passport or a permit keeps its type whatever its number."""
    unsure = (cert_type.isna() | cert_type.eq("other")).fillna(False).astype(bool) & raw_number.notna()
    if not unsure.any():
        return cert_type
    judged = ids.normalize_resident_id(raw_number[unsure], today=ctx.as_of.date)
    valid = judged["cert_valid"].fillna(False).astype(bool).to_numpy()
    resolved = cert_type.astype(object).copy()
    resolved[unsure[unsure].index[valid]] = "resident_id"
    return as_text(resolved)


def _certificate(fields: pd.DataFrame, spec: dict, ctx: Context, out: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Certificate columns into `out`; returns the gender and birth date a valid resident ID
    number says (NaN where none)."""
    index = fields.index
    from_code = ids.cert_type_from_national if spec["cert_types"] == "national" else ids.cert_type_from_provincial
    cert_type = as_text(pd.Series(from_code(_field(fields, "cert_type")), index=index))
    raw_number = _field(fields, "cert_no")
    cert_type = _resident_ids_of_unknown_type(cert_type, raw_number, ctx)
    is_resident = cert_type.eq("resident_id").fillna(False)
    out["cert_type"] = cert_type
    number = pd.Series(np.nan, index=index, dtype=object)
    out["cert_masked"] = pd.Series(False, index=index, dtype="boolean")
    out["cert_valid"] = pd.Series(False, index=index, dtype="boolean")
    out["cert_prefix4"] = pd.Series(np.nan, index=index, dtype="str")
    out["cert_suffix4"] = pd.Series(np.nan, index=index, dtype="str")
    id_gender = pd.Series(np.nan, index=index, dtype="str")
    id_birth = pd.Series(pd.NaT, index=index, dtype="datetime64[s]")
    if is_resident.any():
        resident = ids.normalize_resident_id(raw_number[is_resident], today=ctx.as_of.date)
        resident.index = raw_number[is_resident].index
        number[is_resident] = resident["cert_no"].astype(object).to_numpy()
        out.loc[is_resident, "cert_masked"] = resident["cert_masked"].fillna(False).astype(bool).to_numpy()
        out.loc[is_resident, "cert_valid"] = resident["cert_valid"].fillna(False).astype(bool).to_numpy()
        out.loc[is_resident, "cert_prefix4"] = resident["cert_prefix4"].astype(object).to_numpy()
        out.loc[is_resident, "cert_suffix4"] = resident["cert_suffix4"].astype(object).to_numpy()
        id_gender[is_resident] = resident["gender"].astype(object).to_numpy()
        id_birth[is_resident] = pd.to_datetime(resident["birth_date"], errors="coerce").to_numpy()
        ctx.note_change_at(_first_birth_after(resident, ctx))
    other = ~is_resident & raw_number.notna()
    if other.any():
        cleaned = as_text(pd.Series(ids.normalize_other_cert(raw_number[other]), index=raw_number[other].index))
        masked = raw_number[other].str.contains("*", regex=False).fillna(False)
        number[other] = cleaned.where(~masked).astype(object).to_numpy()
        out.loc[other, "cert_masked"] = masked.to_numpy()
        # a passport or permit is short: its ends show no more than masking would (half at most)
        shown = cleaned.fillna(raw_number[other]).map(visible_ends)
        out.loc[other, "cert_prefix4"] = shown.str[0].to_numpy()
        out.loc[other, "cert_suffix4"] = shown.str[1].to_numpy()
    # the last four sealed at rest: beside the birth date, county and first four they are the number
    out["cert_suffix4"] = sealed_suffixes(out["cert_suffix4"], ctx.settings.pii_hash_key)
    clear = pd.Series(number, index=index).where(~out["cert_masked"].fillna(False).astype(bool))
    out["cert_hash"] = hashed(as_text(clear), ctx)
    return id_gender, pd.to_datetime(id_birth, errors="coerce")


def _first_birth_after(resident: pd.DataFrame, ctx: Context) -> pd.Timestamp | None:
    """The Beijing midnight (UTC) of the earliest birth date after the run's date that an
    18-character number not judged valid carries: from that day on the number may be valid
    (`ids.is_valid_resident_id`). Conservative: the check character is not looked at."""
    invalid = resident.loc[~resident["cert_valid"].fillna(False).astype(bool), "cert_no"].dropna().astype(str)
    invalid = invalid[invalid.str.len() == 18]
    if not len(invalid):
        return None
    born = pd.to_datetime(invalid.str.slice(6, 14), format="%Y%m%d", errors="coerce")
    born = born[born > pd.Timestamp(ctx.as_of.date)]
    if not len(born):
        return None
    return (born.min() - pd.Timedelta(hours=8)).tz_localize("UTC")


def _person_identity(fields: pd.DataFrame, spec: dict, ctx: Context) -> Derived:
    index = fields.index
    out = pd.DataFrame(index=index)
    id_gender, id_birth = _certificate(fields, spec, ctx, out)
    stated_gender = as_text(pd.Series(statuses.gender_from_code(_field(fields, "gender")), index=index))
    failed: dict[str, pd.Series] = {}
    reasons: dict[str, Reason | list[Reason]] = {}
    if "birth_date" in fields:
        birth = dated(fields["birth_date"], _with_fast_path(fields["birth_date"], "%Y-%m-%d", parse_date, utc=False))
        stated_birth, failed["birth_date"] = birth.values, birth.failed
        if birth.reason is not None:
            reasons["birth_date"] = birth.reason
    else:
        stated_birth = pd.Series(pd.NaT, index=index, dtype="datetime64[s]")
    trusted = out["cert_valid"].fillna(False).astype(bool)
    out["gender"] = id_gender.where(trusted & id_gender.notna(), stated_gender)
    out["birth_date"] = id_birth.where(trusted & id_birth.notna(), stated_birth)
    # only a valid number's gender and birth date can contradict what was stated
    conflicts = ids.identity_conflicts(id_gender.where(trusted), id_birth.where(trusted), stated_gender, stated_birth)
    out["gender_conflict"] = conflicts["gender_conflict"].to_numpy()
    out["birth_conflict"] = conflicts["birth_conflict"].to_numpy()

    raw_phone = _field(fields, "phone")
    phone = phones.normalize_phone(raw_phone)
    phone.index = index
    phone_masked = phone["phone_masked"].fillna(False).astype(bool)
    phone_valid = phone["phone_valid"].fillna(False).astype(bool)
    out["phone_hash"] = hashed(as_text(phone["phone"]).where(phone_valid & ~phone_masked), ctx)
    out["phone_masked"] = phone_masked
    out["phone_prefix3"] = as_text(phone["phone_prefix3"]).where(phone_valid | phone_masked)
    out["phone_suffix4"] = as_text(phone["phone_suffix4"]).where(phone_valid | phone_masked)
    ctx.flag("phone_invalid", raw_phone.notna() & ~phone_masked & ~phone_valid)
    # a box of several mobiles keeps the first (hashed), the others dropped: counted
    ctx.flag("several_phones", phones.several_mobiles(raw_phone) & (phone_valid | phone_masked))
    return Derived(out, failed, reasons)


def _uscc(fields: pd.DataFrame, spec: dict, ctx: Context) -> Derived:
    """A credit code is public and published; an ID number or phone typed into its box is
    not: emptied, and counted."""
    result = ids.normalize_uscc(_field(fields, "uscc"))
    result.index = fields.index
    code = as_text(result["uscc"])
    valid = result["uscc_valid"].fillna(False).astype(bool)
    personal = shaped_like_a_personal_number(code) & ~valid
    out = pd.DataFrame(index=fields.index)
    out["uscc"] = code.where(~personal)
    out["uscc_valid"] = valid
    return Derived(out, {"uscc": personal})


def _categories_frame(result: pd.DataFrame, index: pd.Index, ctx: Context) -> Derived:
    result.index = index
    out = pd.DataFrame(index=index)
    out["categories"] = as_text(result["categories"])
    # what did not map is kept for a person to read: as typed, but never a number in clear
    out["unmapped_categories"] = masked_personal_numbers(
        as_text(result["unmapped_categories"]), "unmapped_categories", ctx)
    return Derived(out)


def _national_categories(fields: pd.DataFrame, spec: dict, ctx: Context) -> Derived:
    codes = fields["codes"].map(lambda value: list(value) if isinstance(value, (list, np.ndarray)) else [])
    return _categories_frame(categories.national_codes_to_categories(codes), fields.index, ctx)


def _provincial_categories(fields: pd.DataFrame, spec: dict, ctx: Context) -> Derived:
    return _categories_frame(
        categories.provincial_labels_to_categories(_field(fields, "labels")), fields.index, ctx)


DERIVED: dict[str, DerivedTransform] = {
    "person_identity": DerivedTransform(
        _person_identity,
        # an ID number must come as text: a JSON number may have lost digits to a float
        {"cert_type": TEXT_OR_NUMBER, "cert_no": TEXT, "gender": TEXT_OR_NUMBER,
         "birth_date": TEXT_OR_NUMBER, "phone": TEXT_OR_NUMBER},
        {"cert_no": "a certificate number as text", "birth_date": "a real calendar date",
         "cert_type": "a certificate type code", "gender": "a gender code", "phone": "a phone number"},
    ),
    "uscc": DerivedTransform(_uscc, {"uscc": TEXT}, {"uscc": "a credit code as text"}),
    "national_categories": DerivedTransform(
        _national_categories, {"codes": frozenset({"list"})}, {"codes": "a list of category codes"}),
    "provincial_categories": DerivedTransform(
        _provincial_categories, {"labels": TEXT}, {"labels": "comma-separated category labels"}),
}
