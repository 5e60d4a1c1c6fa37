"""Service given by the world's persons, as national service records and provincial logs.

Each true service is recorded in one system, or logged on the provincial platform and
pushed up to the national system (then both rows exist, linked by the log's
`nationalRecordId` and/or the record's `origin`, and the national hours are the true ones).
Valid services have 0 < hours ≤ 24, start ≤ end, a date before `as_of` and a Guizhou
project; the planted invalid rows break exactly one quarantine rule each and are not part
of the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from sandbox.clock import DAY, HOUR, Clock, day_start
from sandbox.names import CATEGORY_LABELS, weighted_labels
from sandbox.world_db import (
    NATIONAL,
    PROVINCIAL,
    Built,
    Rows,
    account_frame,
    fixed_width_ids,
    invalid_count,
    invalid_frame,
    j_num,
    j_str,
    national_times,
    objects,
    provincial_dates,
    stored_rows,
    take_ids,
)

SERVICE_LOG_BASE = 10_000_000
MEAN_SERVICES = 2.6  # true services per ordinary person: ~4 stored records a person in all
DISPERSION = 0.6  # negative binomial shape: most give a little, a few give a lot
MAX_SERVICES = 400
DEDICATED_SHARE = 0.004
INVALID_SERVICE_SHARE = 0.0012
NATIONAL_EFFECTIVE = "2"
PROVINCIAL_EFFECTIVE = "已通过"


@dataclass
class ProjectPools:
    """Projects a service can belong to, by channel (N national, P provincial, B both) and
    prefecture: most people serve near home."""

    projects: pd.DataFrame  # text columns as Python objects: read per chunk, never converted
    by_prefecture: dict[tuple[str, str], np.ndarray]
    by_channel: dict[str, np.ndarray]
    category_labels: np.ndarray  # each project's national category label

    @classmethod
    def from_projects(cls, projects: pd.DataFrame) -> ProjectPools:
        projects = projects.reset_index(drop=True)
        projects = projects.assign(
            **{
                c: objects(projects[c])
                for c in projects.columns
                if isinstance(projects[c].dtype, pd.StringDtype)
            }
        )
        live = ~projects["deleted"].to_numpy()
        masks = {
            "N": live & projects["in_national"].to_numpy(),
            "P": live & projects["in_provincial"].to_numpy(),
            "B": live & projects["in_national"].to_numpy() & projects["in_provincial"].to_numpy(),
        }
        prefecture = projects["prefecture"].to_numpy()
        by_channel = {c: np.flatnonzero(m) for c, m in masks.items()}
        by_prefecture = {}
        for channel, rows in by_channel.items():
            for p in np.unique(prefecture[rows]):
                by_prefecture[(channel, p)] = rows[prefecture[rows] == p]
        labels = np.array([CATEGORY_LABELS[c] for c in projects["category"]], dtype=object)
        return cls(projects, by_prefecture, by_channel, labels)

    def pick(
        self, rng: np.random.Generator, channel: np.ndarray, prefecture: np.ndarray
    ) -> np.ndarray:
        out = np.empty(len(channel), dtype=np.int64)
        local = rng.random(len(channel)) < 0.8
        for c in ("N", "P", "B"):
            rows = np.flatnonzero(channel == c)
            pool = self.by_channel[c]
            out[rows] = pool[rng.integers(0, len(pool), len(rows))] if len(pool) else -1
            for p in np.unique(prefecture[rows]):
                near = self.by_prefecture.get((c, p))
                chosen = rows[(prefecture[rows] == p) & local[rows]]
                if near is not None and len(chosen):
                    out[chosen] = near[rng.integers(0, len(near), len(chosen))]
        return out


def _channels(rng: np.random.Generator, presence: np.ndarray, pools: ProjectPools) -> np.ndarray:
    channel = np.where(presence == "national", "N", "P").astype("<U1")
    both = presence == "both"
    channel[both] = weighted_labels(rng, ("N", "P", "B"), (35, 35, 30), int(both.sum()))
    if not len(pools.by_channel["B"]):
        channel[channel == "B"] = "N"
    return channel


def _minutes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Minutes of service: mostly half-hour multiples of a few hours, a few long duties,
    and some at exactly 24 hours (valid: the rule is more than 24)."""
    kind = rng.random(n)
    halves = (
        rng.choice(
            np.arange(1, 17),
            size=n,
            p=np.array([4, 10, 8, 12, 6, 10, 4, 8, 2, 4, 1, 3, 1, 2, 1, 2]) / 78,
        )
        * 30
    )
    return np.where(
        kind < 0.6,
        halves,
        np.where(
            kind < 0.985,
            rng.integers(10, 601, n),
            np.where(kind < 0.997, rng.integers(600, 1201, n), 1440),
        ),
    ).astype(np.int64)


@dataclass
class ServiceOutput:
    built: Built
    truth: pd.DataFrame  # one row per true service
    national_hours: np.ndarray  # effective national hours per account row (0 for provincial)
    provincial_minutes: np.ndarray  # effective provincial minutes per account row
    last_update: np.ndarray  # latest updated_at of the account's service rows (0 if none)
    has_services: np.ndarray  # the account has any service row


def build_services(
    rng: np.random.Generator,
    persons: pd.DataFrame,
    accounts: pd.DataFrame,
    pools: ProjectPools,
    clock: Clock,
    next_ids: dict[str, int],
    plant_invalid: bool = True,
    mean_services: float = MEAN_SERVICES,
) -> ServiceOutput:
    """The true services of `persons`, recorded on their `accounts`."""
    n_accounts = len(accounts)
    person_of = accounts["person"].to_numpy()
    national_account = np.full(len(persons), -1)
    provincial_account = np.full(len(persons), -1)
    second_account = np.full(len(persons), -1)
    is_nat = accounts["source"].to_numpy() == NATIONAL
    second = accounts["second_account"].to_numpy()
    national_account[person_of[is_nat]] = np.flatnonzero(is_nat)
    provincial_account[person_of[~is_nat & ~second]] = np.flatnonzero(~is_nat & ~second)
    second_account[person_of[second]] = np.flatnonzero(second)
    reg = accounts["reg"].to_numpy()

    p = DISPERSION / (DISPERSION + mean_services)
    counts = np.minimum(rng.negative_binomial(DISPERSION, p, len(persons)), MAX_SERVICES)
    # A few dedicated volunteers serve every week for years: the star levels need them.
    dedicated = rng.random(len(persons)) < DEDICATED_SHARE
    counts[dedicated] = rng.integers(80, MAX_SERVICES + 1, int(dedicated.sum()))
    person = np.repeat(np.arange(len(persons)), counts)
    n = len(person)
    channel = _channels(rng, persons["presence"].to_numpy()[person], pools)
    project = pools.pick(rng, channel, persons["prefecture"].to_numpy()[person])
    keep = project >= 0
    person, channel, project = person[keep], channel[keep], project[keep]
    n = len(person)
    nat_acct = np.where(channel != "P", national_account[person], -1)
    prov_acct = np.where(channel != "N", provincial_account[person], -1)
    use_second = (prov_acct >= 0) & (second_account[person] >= 0) & (rng.random(n) < 0.3)
    prov_acct = np.where(use_second, second_account[person], prov_acct)

    proj = pools.projects
    low = np.maximum.reduce(
        [
            proj["publish"].to_numpy()[project],
            np.where(nat_acct >= 0, reg[nat_acct], 0),
            np.where(prov_acct >= 0, reg[prov_acct], 0),
        ]
    )
    high = clock.as_of - 3 * DAY
    start = day_start(clock.between(rng, low, high)) + 7 * HOUR + rng.integers(0, 12 * 60, n) * 60
    start = np.maximum(start, low)
    minutes = _minutes(rng, n)
    minutes = np.where(dedicated[person], np.maximum(minutes, rng.integers(6, 17, n) * 30), minutes)
    end = start + minutes * 60 + rng.integers(0, 46, n) * 60
    hours = np.round(minutes / 60, 2)

    pushed = channel == "B"
    effective = rng.random(n) < np.where(pushed, 0.95, 0.86)
    deleted = rng.random(n) < 0.015
    nat_rows = np.flatnonzero(nat_acct >= 0)
    prov_rows = np.flatnonzero(prov_acct >= 0)
    nat_seq = take_ids(next_ids, "national.service_records", len(nat_rows))
    national_id = np.full(n, None, dtype=object)
    national_id[nat_rows] = fixed_width_ids(nat_seq).to_numpy(zero_copy_only=False)
    log_id = np.full(n, -1, dtype=np.int64)
    log_id[prov_rows] = SERVICE_LOG_BASE + take_ids(
        next_ids, "provincial.service_logs", len(prov_rows)
    )

    prov_updated = clock.capped(rng, end, end + rng.exponential(2 * DAY, n).astype(np.int64))
    nat_updated = np.where(
        pushed,
        clock.capped(rng, prov_updated, prov_updated + rng.exponential(DAY, n).astype(np.int64)),
        clock.capped(rng, end, end + rng.exponential(3 * DAY, n).astype(np.int64)),
    )
    # A withdrawn service's rows are deleted together: both carry one deletion stamp.
    deleted_at = clock.between(rng, np.maximum(nat_updated, prov_updated), clock.as_of)
    nat_updated = clock.with_batch_stamps(rng, end, np.where(deleted, deleted_at, nat_updated))
    prov_updated = clock.with_batch_stamps(rng, end, np.where(deleted, deleted_at, prov_updated))

    link = weighted_labels(rng, ("both", "record", "origin"), (60, 25, 15), n)
    recorded = {
        "accounts": accounts,
        "project": project,
        "projects": proj,
        "start": start,
        "end": end,
        "hours": hours,
        "minutes": minutes,
        "effective": effective,
        "deleted": deleted,
        "pushed": pushed,
        "link": link,
        "national_id": national_id,
        "log_id": log_id,
    }
    records = _national_records(rng, nat_rows, nat_acct, nat_updated, recorded)
    logs = _provincial_logs(rng, prov_rows, prov_acct, prov_updated, recorded)
    service_seq = take_ids(next_ids, "truth.services", n)
    service_ids = np.strings.add("S", np.strings.zfill(service_seq.astype("<U11"), 11)).astype(
        object
    )
    record_truth = account_frame(
        records, "service", service_ids[nat_rows], nat_updated[nat_rows], deleted[nat_rows]
    )
    log_truth = account_frame(
        logs, "service", service_ids[prov_rows], prov_updated[prov_rows], deleted[prov_rows]
    )
    built = Built(rows=[records, logs], accounts=[record_truth, log_truth])
    counted = effective & ~deleted
    truth = pd.DataFrame(
        {
            "service_id": service_ids,
            "person_id": persons["person_id"].to_numpy()[person],
            "hours": np.where(nat_acct >= 0, hours, minutes / 60),
            "effective": counted,
            "national_source_id": objects(national_id),
            "provincial_source_id": objects(np.where(log_id >= 0, log_id.astype(str), None)),
            "service_date": day_start(start).astype("datetime64[s]").astype("datetime64[D]"),
            "org_id": proj["org_id"].to_numpy()[project],
            "project_id": proj["project_id"].to_numpy()[project],
            "category": objects(pools.category_labels[project]),
        }
    )
    national_hours = np.bincount(
        nat_acct[nat_rows], weights=np.where(counted, hours, 0)[nat_rows], minlength=n_accounts
    )
    provincial_minutes = np.bincount(
        prov_acct[prov_rows], weights=np.where(counted, minutes, 0)[prov_rows], minlength=n_accounts
    )
    last_update = np.zeros(n_accounts, dtype=np.int64)
    np.maximum.at(last_update, nat_acct[nat_rows], nat_updated[nat_rows])
    np.maximum.at(last_update, prov_acct[prov_rows], prov_updated[prov_rows])
    has_services = np.zeros(n_accounts, dtype=bool)
    has_services[nat_acct[nat_rows]] = True
    has_services[prov_acct[prov_rows]] = True
    if plant_invalid and n:
        built.extend(
            _invalid_services(rng, accounts, pools, clock, next_ids, len(nat_rows), len(prov_rows))
        )
    return ServiceOutput(
        built, truth, national_hours, provincial_minutes.astype(np.int64), last_update, has_services
    )


def _status(rng, rows: np.ndarray, v: dict, effective: str, withdrawn: str, others, weights):
    """A stored service row's status: `effective` for an effective service; `withdrawn` for a
    pushed one that is not (both of its rows show it withdrawn); else one of `others`."""
    drawn = weighted_labels(rng, others, weights, len(rows))
    return np.where(v["effective"][rows], effective, np.where(v["pushed"][rows], withdrawn, drawn))


def _national_records(
    rng, rows: np.ndarray, account: np.ndarray, updated: np.ndarray, v: dict
) -> Rows:
    """National service record rows (albx*) for the services at `rows`."""
    n = len(rows)
    pushed = v["pushed"][rows]
    status = _status(
        rng, rows, v, NATIONAL_EFFECTIVE, "3", ("0", "1", "3", "4", "5"), (3, 3, 2, 4, 2)
    )
    entry = np.where(
        pushed, "1", weighted_labels(rng, ("0", "1", "2", "3", "4"), (5, 40, 25, 15, 15), n)
    )
    origin = np.where(
        pushed & (v["link"][rows] != "record"),
        np.char.add("provincial:", v["log_id"][rows].astype(str)),
        None,
    )
    project = v["project"][rows]
    projects = v["projects"]
    fields = [
        ("albx0175", j_str(v["accounts"]["source_id"].to_numpy()[account[rows]])),
        ("albx0001", j_str(projects["national_no"].to_numpy()[project])),
        ("albe0001", j_str(projects["national_team_no"].to_numpy()[project])),
        ("albx0181", j_str(national_times(v["start"][rows]))),
        ("albx0182", j_str(national_times(v["end"][rows]))),
        ("albx0172", j_num(v["hours"][rows])),
        ("albx0173", j_str(entry)),
        ("albx0174", j_str(status)),
        ("origin", j_str(origin)),
    ]
    return stored_rows(
        NATIONAL,
        "service_records",
        pa.array(v["national_id"][rows].astype(str)),
        fields,
        updated[rows],
        v["deleted"][rows],
        projects["national_region"].to_numpy()[project],
    )


def _provincial_logs(
    rng, rows: np.ndarray, account: np.ndarray, updated: np.ndarray, v: dict
) -> Rows:
    """Provincial service log rows for the services at `rows` (minutes, labels, link ids)."""
    n = len(rows)
    pushed = v["pushed"][rows]
    status = _status(
        rng, rows, v, PROVINCIAL_EFFECTIVE, "已撤销", ("待审核", "已驳回", "已撤销"), (6, 5, 3)
    )
    record_id = np.where(pushed & (v["link"][rows] != "origin"), v["national_id"][rows], None)
    project = v["project"][rows]
    projects = v["projects"]
    fields = [
        ("userId", j_num(v["accounts"]["source_id"].to_numpy()[account[rows]])),
        ("teamId", j_num(projects["provincial_team_id"].to_numpy()[project])),
        ("activityId", j_num(projects["provincial_id"].to_numpy()[project])),
        ("serviceDate", j_str(provincial_dates(v["start"][rows], rng))),
        ("durationMinutes", j_num(v["minutes"][rows])),
        ("status", j_str(status)),
        ("nationalRecordId", j_str(record_id)),
    ]
    return stored_rows(
        PROVINCIAL,
        "service_logs",
        v["log_id"][rows],
        fields,
        updated[rows],
        v["deleted"][rows],
        np.full(n, ""),
    )


# --- planted invalid service rows ----------------------------------------------------------


def _invalid_services(
    rng,
    accounts: pd.DataFrame,
    pools: ProjectPools,
    clock: Clock,
    next_ids: dict[str, int],
    national_records: int,
    provincial_logs: int,
) -> Built:
    """Service rows that each break one quarantine rule, on real accounts and projects."""
    built = Built()
    source = accounts["source"].to_numpy()
    nat_accounts = np.flatnonzero(source == NATIONAL)
    prov_accounts = np.flatnonzero(source == PROVINCIAL)
    if len(nat_accounts) and len(pools.by_channel["N"]):
        built.extend(
            _invalid_records(rng, accounts, nat_accounts, pools, clock, next_ids, national_records)
        )
    if len(prov_accounts) and len(pools.by_channel["P"]):
        built.extend(
            _invalid_logs(rng, accounts, prov_accounts, pools, clock, next_ids, provincial_logs)
        )
    return built


def _planted_rules(rng, kinds: list[str], stored: int, share: float) -> np.ndarray:
    """The rule each planted row breaks: per kind a share of the `stored` rows, at least one."""
    return np.repeat(kinds, [invalid_count(rng, stored, share) for _ in kinds])


def _planted_on(rng, n: int, candidates: np.ndarray, channel: str, pools, accounts):
    """For `n` planted rows: a real account among `candidates`, a project of the channel, and
    the earliest instant both allow."""
    pool = pools.by_channel[channel]
    acct = candidates[rng.integers(0, len(candidates), n)]
    project = pool[rng.integers(0, len(pool), n)]
    low = np.maximum(
        pools.projects["publish"].to_numpy()[project], accounts["reg"].to_numpy()[acct]
    )
    return acct, project, low


def _planted_updates(rng, clock: Clock, rules: np.ndarray, finished: np.ndarray) -> np.ndarray:
    """When planted rows were last stamped: a future-dated one within the month before as_of
    (entered ahead of time), any other within a day after its service `finished`."""
    return np.where(
        rules == "future_date",
        clock.as_of - rng.integers(0, 30 * DAY, len(rules)),
        clock.capped(rng, finished, finished + DAY),
    )


def _invalid_records(rng, accounts, candidates, pools, clock, next_ids, stored: int) -> Built:
    """National service records dated in the future, ending before they start, with hours
    out of range, or naming no volunteer."""
    kinds = ["end_before_start", "hours_out_of_range", "future_date", "missing_required"]
    rules = _planted_rules(rng, kinds, stored, INVALID_SERVICE_SHARE)
    n = len(rules)
    acct, project, low = _planted_on(rng, n, candidates, "N", pools, accounts)
    start = day_start(clock.between(rng, low, clock.as_of - 3 * DAY)) + 9 * HOUR
    start = np.where(
        rules == "future_date",
        day_start(clock.as_of + rng.integers(200, 401, n) * DAY) + 9 * HOUR,
        start,
    )
    hours = np.where(rules == "hours_out_of_range", rng.choice([30.0, 0.0, -2.5, 25.5], n), 3.0)
    end = np.where(
        rules == "end_before_start",
        start - rng.integers(1, 6, n) * HOUR,
        start + np.where(hours > 0, 10, 1) * HOUR,
    )
    updated = _planted_updates(rng, clock, rules, np.maximum(start, end))
    proj = pools.projects
    volunteer = np.where(rules == "missing_required", "", accounts["source_id"].to_numpy()[acct])
    fields = [
        ("albx0175", j_str(volunteer)),
        ("albx0001", j_str(proj["national_no"].to_numpy()[project])),
        ("albe0001", j_str(proj["national_team_no"].to_numpy()[project])),
        ("albx0181", j_str(national_times(start))),
        ("albx0182", j_str(national_times(end))),
        ("albx0172", j_num(hours)),
        ("albx0173", j_str(np.full(n, "2"))),
        ("albx0174", j_str(np.full(n, NATIONAL_EFFECTIVE))),
        ("origin", j_str([None] * n)),
    ]
    rows = stored_rows(
        NATIONAL,
        "service_records",
        fixed_width_ids(take_ids(next_ids, "national.service_records", n)),
        fields,
        updated,
        np.zeros(n, dtype=bool),
        proj["national_region"].to_numpy()[project],
    )
    return Built(rows=[rows], invalid=[invalid_frame(rows, "service", rules)])


def _invalid_logs(rng, accounts, candidates, pools, clock, next_ids, stored: int) -> Built:
    """Provincial service logs dated in the future or with minutes out of range."""
    kinds = ["hours_out_of_range", "future_date"]
    rules = _planted_rules(rng, kinds, stored, INVALID_SERVICE_SHARE * 2)
    n = len(rules)
    acct, project, low = _planted_on(rng, n, candidates, "P", pools, accounts)
    date = clock.between(rng, low, clock.as_of - 3 * DAY)
    date = np.where(rules == "future_date", clock.as_of + rng.integers(200, 401, n) * DAY, date)
    minutes = np.where(rules == "hours_out_of_range", rng.choice([1800, 0, -60, 1500], n), 120)
    updated = _planted_updates(rng, clock, rules, date)
    proj = pools.projects
    fields = [
        ("userId", j_num(accounts["source_id"].to_numpy()[acct])),
        ("teamId", j_num(proj["provincial_team_id"].to_numpy()[project])),
        ("activityId", j_num(proj["provincial_id"].to_numpy()[project])),
        ("serviceDate", j_str(provincial_dates(date, rng))),
        ("durationMinutes", j_num(minutes)),
        ("status", j_str(np.full(n, PROVINCIAL_EFFECTIVE))),
        ("nationalRecordId", j_str([None] * n)),
    ]
    rows = stored_rows(
        PROVINCIAL,
        "service_logs",
        SERVICE_LOG_BASE + take_ids(next_ids, "provincial.service_logs", n),
        fields,
        updated,
        np.zeros(n, dtype=bool),
        np.full(n, ""),
    )
    return Built(rows=[rows], invalid=[invalid_frame(rows, "service", rules)])
