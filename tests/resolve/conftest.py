"""Fixtures for resolution tests: a synthetic background world and a builder for hand-made accounts."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from tests.resolve.synthetic import _cert_columns, _hash, _phone_columns, make_cert, make_world


def account(source: str, source_id: str, name: str, birth: date | None, gender: str | None, region: str,
            cert: str | None = None, cert_masked: bool = False, cert_valid: bool = True,
            phone: str | None = None, phone_masked: bool = False, national_volunteer_no: str | None = None,
            updated: str = "2026-05-01", is_deleted: bool = False, status: str = "active",
            registered_on: str = "2020-01-01") -> dict:
    """One staged volunteer row (canonical columns), numbers hashed the way staging does."""
    return {
        "source": source, "source_id": source_id, "name": name,
        "birth_date": pd.Timestamp(birth) if birth else pd.NaT, "gender": gender, "region_code": region,
        **_cert_columns(cert, cert_masked, cert_valid), **_phone_columns(phone, phone_masked),
        "national_volunteer_no": national_volunteer_no, "updated_at": pd.Timestamp(updated, tz="UTC"),
        "is_deleted": is_deleted, "status": status, "registered_on": pd.Timestamp(registered_on),
    }


@pytest.fixture(scope="session")
def background() -> pd.DataFrame:
    """1,500 synthetic persons' accounts: the crowd the hard cases hide in."""
    accounts, _ = make_world(1500, seed=11)
    return accounts


def with_background(background: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    return pd.concat([background.drop(columns=["person_id"]), pd.DataFrame(rows)], ignore_index=True)


__all__ = ["account", "with_background", "make_cert", "_hash"]
