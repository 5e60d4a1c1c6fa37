"""What must hold after every resolution, with or without a sandbox truth to compare with.

The resolved assets' checks (assets/resolved.py) are these functions' counts; each is zero
when resolution is sound:

* `account_key_problems`: every staged account has exactly one key, every key a golden
  record, every golden record an account;
* `unexplained_key_changes`: an account whose key changed since the previous sync is
  explained by a merge or a split logged in this sync's key history;
* `service_count_problems`: every effective service record is counted exactly once, with
  its own hours (a record in both systems once, with the national hours), and every fact
  goes back to staged records.

Counts only: nothing here returns a name, a number or an id.
"""

from __future__ import annotations

import pandas as pd

from pipelines.resolve.vectorized import is_in, looked_up

ACCOUNT = ["source", "source_id"]
# the staged service columns service_count_problems reads
COUNT_COLUMNS = ["is_deleted", "source", "source_id", "is_effective", "national_record_id", "origin_log_id", "hours"]


def _accounts(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[ACCOUNT].astype("string")


def account_key_problems(
    staged: pd.DataFrame, source_map: pd.DataFrame, key: str, golden_keys: pd.Series
) -> dict[str, int]:
    """Accounts without a key or with several, map rows of no staged account, keys without a
    golden record and golden records without an account."""
    accounts = _accounts(staged).drop_duplicates()
    mapped = source_map.assign(**_accounts(source_map))
    per_account = accounts.merge(mapped[ACCOUNT + [key]], on=ACCOUNT, how="left")
    keys_per_account = per_account.groupby(ACCOUNT, dropna=False)[key].agg(["count", "size"])
    stray = mapped.merge(accounts, on=ACCOUNT, how="left", indicator=True)
    map_keys = set(mapped[key].dropna())
    golden = set(golden_keys.dropna())
    return {
        "accounts_without_key": int((keys_per_account["count"] == 0).sum()),
        "accounts_with_several_keys": int((keys_per_account["size"] > 1).sum()),
        "mapped_accounts_not_staged": int((stray["_merge"] == "left_only").sum()),
        "keys_without_golden_record": len(map_keys - golden),
        "golden_records_without_account": len(golden - map_keys),
    }


def unexplained_key_changes(
    previous_map: pd.DataFrame | None, current_map: pd.DataFrame, key: str, history: pd.DataFrame
) -> dict[str, int]:
    """Accounts whose key moved since the previous sync, and those of them no event of this
    sync's `history` (key, event, related_key) explains: `merged_into` and `moved_to` name
    (old key, new key), `split_from` names (new key, old key)."""
    if previous_map is None or not len(previous_map):
        return {"accounts_with_new_key": 0, "unexplained_key_changes": 0}
    before = previous_map.assign(**_accounts(previous_map))[ACCOUNT + [key]]
    after = current_map.assign(**_accounts(current_map))[ACCOUNT + [key]]
    moved = before.merge(after, on=ACCOUNT, suffixes=("_before", "_after"))
    moved = moved.loc[moved[f"{key}_before"] != moved[f"{key}_after"]]
    forward = history["event"].isin(["merged_into", "moved_to"])
    backward = history["event"] == "split_from"
    logged = set(zip(history.loc[forward, "key"], history.loc[forward, "related_key"])) | set(
        zip(history.loc[backward, "related_key"], history.loc[backward, "key"])
    )
    explained = sum(
        (old, new) in logged for old, new in zip(moved[f"{key}_before"], moved[f"{key}_after"])
    )
    return {
        "accounts_with_new_key": int(len(moved)),
        "unexplained_key_changes": int(len(moved) - explained),
    }


def _not_in(values: pd.Series, others: pd.Series) -> int:
    """How many distinct values are not among `others` (len(set(values) - set(others)))."""
    distinct = values.drop_duplicates()
    return int((~is_in(distinct, others)).sum())


def service_count_problems(staged_services: pd.DataFrame, facts: pd.DataFrame) -> dict[str, int | float]:
    """Each effective staged record counted exactly once, with its own hours."""
    # the columns read here only: the staged services are millions of rows, copied below
    live = staged_services.loc[~staged_services["is_deleted"].fillna(False).astype(bool), COUNT_COLUMNS[1:]]
    effective = live["is_effective"].fillna(False).astype(bool)
    ids = {source: live.loc[live["source"] == source] for source in ("national", "provincial")}
    del live
    problems: dict[str, int | float] = {}
    counted = {}
    for source in ("national", "provincial"):
        column = f"{source}_source_id"
        named = facts[column].dropna().astype("string")
        problems[f"facts_naming_unknown_{source}_records"] = int((~is_in(named, ids[source]["source_id"])).sum())
        problems[f"{source}_records_counted_twice"] = int(named.duplicated().sum())
        counted[source] = named
    national_effective = ids["national"].loc[effective.loc[ids["national"].index], "source_id"].astype("string")
    problems["effective_national_records_not_counted"] = _not_in(national_effective, counted["national"])
    # a provincial record counts on its own only where no national copy decides for it
    provincial = ids["provincial"].assign(source_id=ids["provincial"]["source_id"].astype("string"))
    provincial_effective = provincial.loc[effective.loc[provincial.index]]
    paired_by_reference = is_in(provincial_effective["national_record_id"], ids["national"]["source_id"]) | is_in(
        provincial_effective["source_id"], ids["national"]["origin_log_id"].dropna()
    )
    alone = provincial_effective.loc[~paired_by_reference, "source_id"]
    problems["effective_provincial_records_not_counted"] = _not_in(alone, counted["provincial"])

    hours_of = {
        source: ids[source].assign(source_id=ids[source]["source_id"].astype("string"))
        .drop_duplicates("source_id")[["source_id", "hours"]]
        for source in ("national", "provincial")
    }

    def own(source: str) -> pd.Series:
        """The hours of the staged record each fact names on `source`'s side."""
        record = hours_of[source]
        return looked_up(facts[f"{source}_source_id"], record["source_id"], record["hours"].astype("float64"))

    from_national = facts["national_source_id"].notna()
    own_hours = own("national").where(from_national, own("provincial"))
    problems["facts_with_other_hours"] = int(((facts["hours"] - own_hours).abs() > 1e-9).sum())
    return problems
