"""One clock for a run: the as-of instant, fixed once, and Beijing time as the contract defines it.

Every layer of a sync asks "as of when?": staging (a date after it is a `future_date`, a birth
date after it is not real), resolution (the key history's `synced_at`), publishing (age bands,
the organization history's `valid_to`, the marts' publish time). The answer is fixed once per
run where the run starts (`assets/`: the Dagster run's creation time, or its `as_of` tag) and
passed down as an `AsOf`; no library function reads the wall clock for it.

Beijing time is UTC+8, a fixed offset, because the contract says so: the `Asia/Shanghai` zone
agrees since 1991 but would apply the daylight saving time of 1986-1991, which neither source
ever wrote. Python, pandas and SQL all use this one offset.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

BEIJING_OFFSET = dt.timedelta(hours=8)
BEIJING = dt.timezone(BEIJING_OFFSET, "UTC+08:00")
# The same fixed zone for DuckDB's and PostgreSQL's timezone(): POSIX names count the other
# way round, so Etc/GMT-8 is UTC+8.
BEIJING_SQL_ZONE = "Etc/GMT-8"


@dataclass(frozen=True, order=True)
class AsOf:
    """The instant a run is "as of": aware, compared and shown in Beijing time."""

    instant: dt.datetime

    def __post_init__(self) -> None:
        if self.instant.tzinfo is None:
            raise ValueError("an as-of instant needs its offset: a naive time is ambiguous")
        object.__setattr__(self, "instant", self.instant.astimezone(BEIJING))

    @classmethod
    def parse(cls, text: str) -> "AsOf":
        """ISO 8601 text; without an offset it is Beijing time (the contract's rule)."""
        moment = dt.datetime.fromisoformat(text.strip())
        return cls(moment if moment.tzinfo else moment.replace(tzinfo=BEIJING))

    @classmethod
    def of(cls, value: "AsOf | dt.datetime | dt.date | str") -> "AsOf":
        """An AsOf from what a caller holds: itself, an aware datetime, ISO text, or a
        Beijing calendar date (its first instant)."""
        if isinstance(value, AsOf):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, dt.datetime):
            return cls(value)
        return cls(dt.datetime.combine(value, dt.time(), tzinfo=BEIJING))

    @classmethod
    def now(cls) -> "AsOf":
        """The wall clock: for the one place a run's instant is decided, and for tools."""
        return cls(dt.datetime.now(BEIJING))

    @property
    def utc(self) -> dt.datetime:
        return self.instant.astimezone(dt.timezone.utc)

    @property
    def date(self) -> dt.date:
        """The Beijing calendar date of the instant."""
        return self.instant.date()

    def isoformat(self) -> str:
        return self.instant.isoformat(timespec="seconds")

    def __str__(self) -> str:
        return self.isoformat()
