"""Resolution quality measured against a sandbox world's truth (truth/*.parquet).

Pairwise: every pair of volunteer accounts is a true positive when resolution and truth both
put it in one person, a false positive when only resolution does, a false negative when only
truth does. Hours: each true person's total from the fact table (services attributed through
the resolved volunteer keys) against the truth, within 0.01 h, and the province's total.
Only counts and rates leave this module: no names, numbers or ids.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HOURS_TOLERANCE = 0.01


def pair_count(sizes: pd.Series) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def pairwise_confusion(predicted: pd.DataFrame, truth: pd.DataFrame, predicted_key: str, true_key: str) -> dict:
    """Confusion counts over account pairs; both frames keyed by (source, source_id)."""
    joined = predicted[["source", "source_id", predicted_key]].merge(
        truth[["source", "source_id", true_key]], on=["source", "source_id"]
    )
    true_positive = pair_count(joined.groupby([predicted_key, true_key]).size())
    predicted_pairs = pair_count(joined.groupby(predicted_key).size())
    actual_pairs = pair_count(joined.groupby(true_key).size())
    tp, fp, fn = true_positive, predicted_pairs - true_positive, actual_pairs - true_positive
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accounts_compared": int(len(joined)), "true_positive_pairs": tp, "false_positive_pairs": fp,
        "false_negative_pairs": fn, "precision": round(precision, 6), "recall": round(recall, 6), "f1": round(f1, 6),
    }


# the truth's columns evaluate_against_truth reads (the files hold names, numbers, dirt: at a
# million persons reading them whole was the step's peak)
ACCOUNT_TRUTH_COLUMNS = ["source", "entity", "source_id", "true_id"]
PERSON_TRUTH_COLUMNS = ["person_id", "true_hours"]


def truth_accounts(truth_dir: Path, entity: str, columns: list[str] | None = None) -> pd.DataFrame:
    accounts = pd.read_parquet(truth_dir / "accounts.parquet", columns=columns)
    accounts = accounts.loc[accounts["entity"].astype(str).str.rstrip("s") == entity.rstrip("s")].copy()
    accounts["source_id"] = accounts["source_id"].astype(str)
    return accounts


def hours_check(facts: pd.DataFrame, volunteer_map: pd.DataFrame, accounts: pd.DataFrame, persons: pd.DataFrame) -> dict:
    """Per-person and province totals against the truth."""
    key_person = (
        volunteer_map.merge(accounts[["source", "source_id", "true_id"]], on=["source", "source_id"])
        .groupby(["volunteer_key", "true_id"]).size().rename("n").reset_index()
        .sort_values(["n", "true_id"], ascending=[False, True]).drop_duplicates("volunteer_key")
        .set_index("volunteer_key")["true_id"]
    )
    attributed = facts[["volunteer_key", "hours"]].assign(person_id=facts["volunteer_key"].map(key_person))
    computed = attributed.groupby("person_id")["hours"].sum()
    true_hours = persons.set_index("person_id")["true_hours"].astype("float64")
    compared = pd.DataFrame({"truth": true_hours}).join(computed.rename("computed"), how="outer").fillna(0.0)
    wrong = (compared["computed"] - compared["truth"]).abs() > HOURS_TOLERANCE
    province_computed = float(facts["hours"].sum())
    province_truth = float(true_hours.sum())
    return {
        "persons_checked": int(len(compared)),
        "persons_hours_wrong": int(wrong.sum()),
        "services_unattributed": int(attributed["person_id"].isna().sum()),
        "province_hours": round(province_computed, 2),
        "province_hours_truth": round(province_truth, 2),
        "province_hours_match": abs(province_computed - province_truth) <= HOURS_TOLERANCE,
    }


def evaluate_against_truth(truth_dir: Path, volunteer_map: pd.DataFrame, facts: pd.DataFrame) -> dict:
    accounts = truth_accounts(truth_dir, "volunteer", ACCOUNT_TRUTH_COLUMNS)
    result = {"volunteers": pairwise_confusion(volunteer_map, accounts, "volunteer_key", "true_id")}
    persons = pd.read_parquet(truth_dir / "persons.parquet", columns=PERSON_TRUTH_COLUMNS)
    result["hours"] = hours_check(facts, volunteer_map, accounts, persons)
    return result


ORG_FIELDS = ["uscc", "registration_status", "level", "is_hub", "region_code", "categories", "member_count",
              "status", "credit_status", "in_national", "in_provincial"]


def organization_check(truth_dir: Path, org_map: pd.DataFrame, golden: pd.DataFrame) -> dict:
    """Organizations: one golden row per true organization, and its contract fields, against the truth."""
    path = truth_dir / "orgs.parquet"
    if not path.exists():
        return {}
    truth = pd.read_parquet(path)
    key_of = {
        source: org_map.loc[org_map["source"] == source].set_index("source_id")["org_key"]
        for source in ("national", "provincial")
    }
    national_key = truth["national_source_id"].astype("string").map(key_of["national"])
    provincial_key = truth["provincial_source_id"].astype("string").map(key_of["provincial"])
    truth = truth.assign(org_key=national_key.fillna(provincial_key))
    unmapped = int(truth["org_key"].isna().sum())
    truth = truth.dropna(subset=["org_key"])
    mine = golden.set_index("org_key").loc[truth["org_key"]].reset_index(drop=True)
    expected = truth.reset_index(drop=True)
    mismatches = {}
    for field in ORG_FIELDS:
        if field not in expected or field not in mine:
            continue
        same = (mine[field].astype(str) == expected[field].astype(str)) | (mine[field].isna() & expected[field].isna())
        mismatches[field] = int((~same).sum())
    return {
        "organizations_truth": int(len(truth) + unmapped),
        "organizations_unmapped": unmapped,
        # golden rows that stand for more than one true organization, and true ones split in two
        "golden_rows_merging_organizations": int(expected.groupby("org_key").size().gt(1).sum()),
        "organizations_split": int(
            (national_key.notna() & provincial_key.notna() & (national_key != provincial_key)).sum()
        ),
        "field_mismatches": mismatches,
    }
