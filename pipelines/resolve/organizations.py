"""Organization resolution: which source teams are one organization, and their golden record.

Contract rules (docs/CONTRACT.md): teams are one organization when their normalized
USCC is equal, when the provincial team carries the national team number, or when normalized
name and county agree. All three are deterministic; links are taken in that order through the
same constrained union-find as volunteers, so a cluster never holds two different valid USCCs
(two registered organizations that happen to share a name in one county stay apart).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.normalize.ids import uscc_identifies
from pipelines.resolve.clustering import constrained_clusters
from pipelines.resolve.keys import HISTORY_COLUMNS, assign_stable_keys, key_of_each
from pipelines.resolve.rules import load_survivorship
from pipelines.resolve.survivorship import apply_survivorship

# The national service category list (ServiceCategory in national.openapi.yaml), in code order:
# golden categories are the union of the accounts' labels, written in this order.
CATEGORY_ORDER = [
    "社区服务", "扶贫减贫", "支教助学", "卫生健康", "法律服务", "生态环保", "文化艺术", "科技科普",
    "体育健身", "助老助残", "应急救援", "交通引导", "消防安全", "禁毒宣传", "网络文明", "文化旅游", "其他",
]
ORG_COLUMNS = [
    "source", "source_id", "updated_at", "is_deleted", "name", "uscc", "uscc_valid",
    "registration_status", "level", "is_hub", "region_code", "categories", "founded_on",
    "member_count", "status", "credit_status", "national_team_no",
]
LINK_ORDER = ["uscc", "national_team_no", "name_region"]
# The name + county rule compares names without punctuation or spaces: typed names carry stray
# and doubled punctuation (贵州省,青年志愿者协会) that normalization may leave behind.
NAME_NOISE = r"[\s,，.。、;；:：!！?？'\"“”‘’()（）\[\]【】<>《》\-_—–·•/\\|]+"
ORG_MAP_COLUMNS = ["source", "source_id", "org_key", "match_method"]
ORG_GOLDEN_COLUMNS = [
    "org_key", "uscc", "name", "registration_status", "level", "is_hub", "region_code", "categories",
    "founded_on", "member_count", "status", "credit_status", "in_national", "in_provincial", "account_count",
]


@dataclass
class OrganizationResolution:
    source_map: pd.DataFrame
    golden: pd.DataFrame
    key_history: pd.DataFrame  # this sync's rows
    summary: dict = field(default_factory=dict)


def prepare_teams(staged_organizations: pd.DataFrame) -> pd.DataFrame:
    frame = staged_organizations.copy()
    for column in ORG_COLUMNS:
        if column not in frame:
            frame[column] = pd.NA
    frame = frame[ORG_COLUMNS].copy()
    frame["source_id"] = frame["source_id"].astype(str)
    frame["is_deleted"] = frame["is_deleted"].fillna(False).astype(bool)
    frame["uscc_valid"] = frame["uscc_valid"].fillna(False).astype(bool)
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True, errors="coerce")
    frame["founded_on"] = pd.to_datetime(frame["founded_on"], errors="coerce")
    frame = frame.drop_duplicates(["source", "source_id"], keep="last")
    frame = frame.sort_values(["source", "source_id"], kind="stable").reset_index(drop=True)
    frame["idx"] = np.arange(len(frame), dtype=np.int64)
    return frame


def _star_links(teams: pd.DataFrame, columns: list[str], method: str) -> pd.DataFrame:
    """Each team linked to the first team sharing its values of `columns`."""
    present = teams.dropna(subset=columns)
    first = present.groupby(columns)["idx"].transform("min")
    links = pd.DataFrame({"l_idx": first, "r_idx": present["idx"], "method": method})
    return links.loc[links["l_idx"] != links["r_idx"]]


def organization_links(teams: pd.DataFrame) -> pd.DataFrame:
    """l_idx, r_idx, method: USCC (a code that identifies: `ids.uscc_identifies`), national
    team number, then name + county."""
    by_uscc = _star_links(teams.loc[uscc_identifies(teams["uscc"])], ["uscc"], "uscc")
    national = teams.loc[teams["source"] == "national", ["source_id", "idx"]]
    carrying = teams.loc[(teams["source"] == "provincial") & teams["national_team_no"].notna(), ["national_team_no", "idx"]]
    joined = carrying.merge(national, left_on="national_team_no", right_on="source_id", suffixes=("_p", "_n"))
    by_number = pd.DataFrame({"l_idx": joined["idx_n"], "r_idx": joined["idx_p"], "method": "national_team_no"})
    keyed = teams.assign(name_key=teams["name"].str.replace(NAME_NOISE, "", regex=True))
    by_name = _star_links(keyed, ["name_key", "region_code"], "name_region")
    links = pd.concat([by_uscc, by_number, by_name], ignore_index=True)
    ordered = links[["l_idx", "r_idx"]].to_numpy()
    if len(links):
        links["l_idx"], links["r_idx"] = ordered.min(axis=1), ordered.max(axis=1)
    links["priority"] = links["method"].map({m: i for i, m in enumerate(LINK_ORDER)})
    links = links.sort_values(["priority", "l_idx", "r_idx"]).drop_duplicates(["l_idx", "r_idx"])
    return links.drop(columns="priority").astype({"l_idx": "int64", "r_idx": "int64"}).reset_index(drop=True)


def _union_categories(accounts: pd.DataFrame) -> pd.Series:
    labels = accounts[["org_key", "categories"]].dropna()
    exploded = labels.assign(label=labels["categories"].str.split(",")).explode("label")
    exploded["label"] = exploded["label"].str.strip()
    exploded = exploded.loc[exploded["label"].isin(CATEGORY_ORDER)].drop_duplicates(["org_key", "label"])
    # each organization's labels as a bit set (one bit per CATEGORY_ORDER position), written
    # once per distinct set: a Python join per organization was most of this step
    bits = exploded["label"].map({label: 1 << i for i, label in enumerate(CATEGORY_ORDER)}).astype("int64")
    held = bits.groupby(exploded["org_key"]).sum()
    text = {int(mask): ",".join(label for i, label in enumerate(CATEGORY_ORDER) if mask >> i & 1)
            for mask in held.unique()}
    joined = held.map(text).astype("str")
    return joined.reindex(sorted(accounts["org_key"].unique()))


def _registration_status(accounts: pd.DataFrame, key: str) -> pd.Series:
    """Contract: registered where either source says so, else filed where provincial says 已备案."""
    registered = (accounts["registration_status"] == "registered").groupby(accounts[key]).any()
    filed = ((accounts["source"] == "provincial") & (accounts["registration_status"] == "filed")).groupby(accounts[key]).any()
    return pd.Series(np.select([registered, filed], ["registered", "filed"], "unregistered"), index=registered.index)


def _organization_status(accounts: pd.DataFrame, key: str) -> pd.Series:
    """Contract: deleted, then exited, win; else the most recently updated live account's status.

    A team deleted at its source (isdelete / isDeleted) counts as deleted. A live team sent
    without a status (optional in the provincial interface) counts as active, as a live
    provincial volunteer does: filled before the latest account is picked, so the most recent
    account decides even when it is the one without a status.
    """
    status = accounts["status"].fillna("active").where(~accounts["is_deleted"], "deleted")
    deleted = (status == "deleted").groupby(accounts[key]).any()
    exited = (status == "exited").groupby(accounts[key]).any()
    latest = (
        accounts.assign(_status=status)
        .sort_values(["updated_at", "source", "source_id"], ascending=[False, True, True])
        .groupby(key)["_status"].first()
        .reindex(deleted.index)
    )
    return pd.Series(np.select([deleted, exited], ["deleted", "exited"], latest), index=deleted.index)


def golden_organizations(accounts_with_keys: pd.DataFrame) -> pd.DataFrame:
    spec = load_survivorship()["organizations"]
    golden = apply_survivorship(
        accounts_with_keys,
        "org_key",
        spec,
        contract_rules={"registration_status": _registration_status, "status": _organization_status},
        derived_rules={"categories": _union_categories},
    )
    golden["account_count"] = golden["org_key"].map(accounts_with_keys["org_key"].value_counts()).astype("int64")
    golden["founded_on"] = pd.to_datetime(golden["founded_on"]).dt.date
    golden["member_count"] = golden["member_count"].astype("Int64")
    return golden[ORG_GOLDEN_COLUMNS]


def resolve_organizations(
    staged_organizations: pd.DataFrame,
    previous_map: pd.DataFrame | None = None,
    issued_keys: set[str] | None = None,
    *,
    synced_at: pd.Timestamp,
) -> OrganizationResolution:
    """Cluster teams, keep their keys stable (previous_map: source, source_id, org_key), build golden rows."""
    teams = prepare_teams(staged_organizations)
    links = organization_links(teams)
    valid_uscc = teams["uscc"].where(teams["uscc_valid"])
    cluster, accepted = constrained_clusters(
        len(teams), links["l_idx"].to_numpy(), links["r_idx"].to_numpy(), pd.factorize(valid_uscc)[0]
    )
    links["accepted"] = accepted
    teams["cluster"] = cluster
    previous = previous_map.rename(columns={"org_key": "key"}) if previous_map is not None else None
    cluster_keys, history = assign_stable_keys(teams, previous, "O", issued_keys or set(), synced_at=synced_at)
    teams["org_key"] = key_of_each(teams["cluster"], cluster_keys)

    accepted_links = links.loc[links["accepted"]]
    ends = pd.concat(
        [accepted_links[["l_idx", "method"]].rename(columns={"l_idx": "idx"}),
         accepted_links[["r_idx", "method"]].rename(columns={"r_idx": "idx"})],
        ignore_index=True,
    )
    ends["priority"] = ends["method"].map({m: i for i, m in enumerate(LINK_ORDER)})
    best = ends.sort_values(["idx", "priority"]).drop_duplicates("idx").set_index("idx")["method"]
    source_map = teams[["source", "source_id", "org_key"]].copy()
    source_map["match_method"] = teams["idx"].map(best).fillna("singleton").to_numpy()

    golden = golden_organizations(teams)
    summary = {
        "teams": int(len(teams)),
        "organizations": int(len(golden)),
        "teams_by_method": {k: int(v) for k, v in source_map["match_method"].value_counts().items()},
        "links_refused": int((~links["accepted"]).sum()),
        "key_changes": int(history["event"].isin(["merged_into", "split_from"]).sum()),
    }
    return OrganizationResolution(source_map[ORG_MAP_COLUMNS], golden, history[HISTORY_COLUMNS], summary)
