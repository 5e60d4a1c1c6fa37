"""Time in the synthetic world: Beijing wall-clock seconds, and random instants within it.

Every instant is an int64 count of seconds on the Beijing wall clock since 1970-01-01
(no zone arithmetic needed: both systems write Beijing time). `Clock` holds the world's
`as_of` (nothing is updated after it) and the start of its history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY = 86_400
HOUR = 3_600
YEAR = 365 * DAY
HISTORY_YEARS = 6


@dataclass(frozen=True)
class Clock:
    as_of: int  # Beijing wall-clock seconds; no row is updated after it
    start: int  # the start of the world's history

    @classmethod
    def ending_at(cls, as_of: int) -> Clock:
        return cls(as_of=as_of, start=as_of - HISTORY_YEARS * YEAR)

    def between(self, rng: np.random.Generator, low, high, skew: float = 1.0) -> np.ndarray:
        """Instants between `low` and `high` (arrays or scalars); skew < 1 favours recent ones."""
        low = np.asarray(low, dtype=np.int64)
        high = np.maximum(np.asarray(high, dtype=np.int64), low)
        size = np.broadcast(low, high).shape
        fraction = rng.random(size) ** skew
        return low + (fraction * (high - low)).astype(np.int64)

    def capped(self, rng: np.random.Generator, low, value, cap=None) -> np.ndarray:
        """`value`, where it passes `cap` (default as_of) redrawn between `low` and `cap`.

        Clamping would pile rows up on the cap's very second; redrawing spreads them.
        """
        cap = self.as_of if cap is None else cap
        low = np.asarray(low, dtype=np.int64)
        value = np.asarray(value, dtype=np.int64)
        redrawn = self.between(rng, np.minimum(low, cap), cap)
        return np.where(value > cap, redrawn, value)

    def updated_after(
        self, rng: np.random.Generator, created, mean_delay_days: float = 30.0
    ) -> np.ndarray:
        """When rows created at `created` were last changed: an exponential delay, ≤ as_of."""
        created = np.asarray(created, dtype=np.int64)
        delay = rng.exponential(mean_delay_days * DAY, size=created.shape).astype(np.int64)
        return self.capped(rng, created, created + delay)

    def last_updated(
        self, rng: np.random.Generator, created, mean_delay_days: float
    ) -> np.ndarray:
        """When rows created at `created` were last changed, some of them by a bulk job."""
        updated = self.updated_after(rng, created, mean_delay_days)
        return self.with_batch_stamps(rng, created, updated)

    def with_deletions(self, rng: np.random.Generator, updated, deleted) -> np.ndarray:
        """`updated`, with the deleted rows stamped when they were deleted: after their last
        change, before as_of (a deletion is an update the servers must deliver)."""
        return np.where(deleted, self.between(rng, updated, self.as_of), updated)

    def batch_stamps(self, rng: np.random.Generator, count: int = 4) -> np.ndarray:
        """Instants of bulk jobs (imports, migrations) that stamp many rows with one second."""
        return np.sort(self.between(rng, np.full(count, self.as_of - 2 * YEAR), self.as_of - DAY))

    def with_batch_stamps(
        self, rng: np.random.Generator, created, updated, share: float = 0.02
    ) -> np.ndarray:
        """`updated`, with a share of rows re-stamped by a bulk job run after they were created.

        Many rows then share one updated_at second: keyset paging must break ties by id.
        """
        stamps = self.batch_stamps(rng)
        updated = np.asarray(updated, dtype=np.int64).copy()
        created = np.asarray(created, dtype=np.int64)
        pick = rng.random(updated.shape) < share
        chosen = stamps[rng.integers(0, len(stamps), size=updated.shape)]
        restamp = pick & (chosen >= created) & (chosen > updated)
        updated[restamp] = chosen[restamp]
        return updated


def day_start(seconds) -> np.ndarray:
    """Midnight (Beijing) of each instant's day."""
    seconds = np.asarray(seconds, dtype=np.int64)
    return seconds - seconds % DAY
