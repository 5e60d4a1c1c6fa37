"""Evaluations of teams: national rows only, and the truth's evaluation score.

Teams in the national system are scored by five kinds of evaluator (the registration
authority, funders, beneficiaries, the team itself, a third party) over yearly periods;
registered teams are evaluated more often. The truth keeps one score per organization, the
contract's rule: the latest period, the mean over evaluator types of each type's mean.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sandbox.clock import DAY, HOUR, Clock
from sandbox.geo import shown_county_codes
from sandbox.world_db import (
    NATIONAL,
    Built,
    account_frame,
    fixed_width_ids,
    j_num,
    j_str,
    stored_rows,
)

EVALUATORS = ("registration_authority", "funder", "beneficiary", "self", "third_party")


def _evaluation_scores(
    rng: np.random.Generator, orgs: pd.DataFrame, as_of_year: int
) -> pd.DataFrame:
    """One row per evaluation: team, period (a year), evaluator type and score."""
    rows = []
    national = orgs[orgs["in_national"]]
    chance = np.where(national["registration_status"].to_numpy() == "registered", 0.7, 0.3)
    for org, evaluated in zip(national.itertuples(), rng.random(len(national)) < chance):
        if not evaluated:
            continue
        quality = rng.normal(82, 6)
        periods = rng.choice(
            np.arange(as_of_year - 3, as_of_year), size=int(rng.integers(1, 4)), replace=False
        )
        for period in periods:
            evaluators = rng.choice(EVALUATORS, size=int(rng.integers(2, 6)), replace=False)
            for evaluator in evaluators:
                for _ in range(int(rng.integers(1, 4)) if evaluator == "beneficiary" else 1):
                    score = float(np.clip(np.round(quality + rng.normal(0, 5), 1), 40, 100))
                    rows.append(
                        (
                            org.org_id,
                            org.national_no,
                            org.county,
                            str(period),
                            str(evaluator),
                            score,
                        )
                    )
    return pd.DataFrame(
        rows, columns=["org_id", "national_no", "county", "period", "evaluator", "score"]
    )


def build_evaluations(
    rng: np.random.Generator, orgs: pd.DataFrame, clock: Clock
) -> tuple[Built, pd.DataFrame]:
    """National evaluations of teams by the five evaluator types, by year; and the truth's
    evaluation score per organization (latest period: mean over types of each type's mean)."""
    as_of_year = int(np.datetime64(clock.as_of, "s").astype("datetime64[Y]").astype(int)) + 1970
    frame = _evaluation_scores(rng, orgs, as_of_year)
    n = len(frame)
    period_start = (
        pd.to_datetime(frame["period"].astype(int) + 1, format="%Y")
        .to_numpy()
        .astype("datetime64[s]")
        .astype(np.int64)
    )
    created = clock.capped(
        rng, period_start, period_start + rng.integers(0, 150 * DAY, n), clock.as_of - HOUR
    )
    updated = clock.last_updated(rng, created, 20)
    deleted = rng.random(n) < 0.02
    updated = clock.with_deletions(rng, updated, deleted)
    seq = np.arange(1, n + 1)
    region, _ = shown_county_codes(rng, frame["county"].to_numpy())
    fields = [
        ("albe0001", j_str(frame["national_no"].to_numpy())),
        ("evaluator", j_str(frame["evaluator"].to_numpy())),
        ("score", j_num(frame["score"].to_numpy())),
        ("period", j_str(frame["period"].to_numpy())),
    ]
    rows = stored_rows(
        NATIONAL, "evaluations", fixed_width_ids(seq), fields, updated, deleted, region
    )
    accounts = account_frame(rows, "evaluation", [f"E{k:09d}" for k in seq], updated, deleted)
    live = frame[~deleted]
    latest = live[live["period"] == live.groupby("org_id")["period"].transform("max")]
    per_type = latest.groupby(["org_id", "evaluator"])["score"].mean()
    scores = per_type.groupby(level="org_id").mean().rename("evaluation_score").reset_index()
    return Built(rows=[rows], accounts=[accounts]), scores
