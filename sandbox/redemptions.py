"""Time-bank redemptions: provincial rows only, spending the minutes volunteers banked.

One provincial account in ten with at least two hours banked redeems one to three times,
each time a share of its minutes in half-hours, for a purpose of the platform's catalogue
(or none given). The national system has no time bank.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sandbox.clock import DAY, HOUR, Clock
from sandbox.names import REDEMPTION_PURPOSES
from sandbox.world_db import (
    PROVINCIAL,
    Built,
    account_frame,
    j_num,
    j_str,
    provincial_times,
    stored_rows,
    take_ids,
)

REDEMPTION_ID_BASE = 500_000  # provincial redemption ids


def build_redemptions(
    rng: np.random.Generator,
    accounts: pd.DataFrame,
    minutes: np.ndarray,
    clock: Clock,
    next_ids: dict[str, int],
) -> Built:
    """Time-bank redemptions of provincial accounts that have banked some hours."""
    eligible = np.flatnonzero(
        (accounts["source"].to_numpy() == PROVINCIAL)
        & (minutes >= 120)
        & (rng.random(len(accounts)) < 0.1)
    )
    times = rng.integers(1, 4, len(eligible))
    acct = np.repeat(eligible, times)
    n = len(acct)
    spent = np.maximum(
        30, (rng.uniform(0.05, 0.5, n) * minutes[acct] / np.repeat(times, times) // 30 * 30)
    ).astype(np.int64)
    redeemed = clock.between(rng, accounts["reg"].to_numpy()[acct], clock.as_of - HOUR)
    updated = clock.with_batch_stamps(
        rng, redeemed, clock.capped(rng, redeemed, redeemed + rng.integers(0, 3 * DAY, n))
    )
    deleted = rng.random(n) < 0.02
    ids = REDEMPTION_ID_BASE + take_ids(next_ids, "provincial.redemptions", n)
    purpose = np.where(
        rng.random(n) < 0.15,
        None,
        np.array(REDEMPTION_PURPOSES)[rng.integers(0, len(REDEMPTION_PURPOSES), n)],
    )
    fields = [
        ("userId", j_num(accounts["source_id"].to_numpy()[acct])),
        ("minutes", j_num(spent)),
        ("purpose", j_str(purpose)),
        ("redeemedAt", j_str(provincial_times(redeemed))),
    ]
    rows = stored_rows(PROVINCIAL, "redemptions", ids, fields, updated, deleted, np.full(n, ""))
    true_ids = [f"R{k:09d}" for k in take_ids(next_ids, "truth.redemptions", n)]
    return Built(
        rows=[rows], accounts=[account_frame(rows, "redemption", true_ids, updated, deleted)]
    )
