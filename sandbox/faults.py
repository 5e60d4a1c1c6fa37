"""The faults the sandbox servers can inject, and the seeded dice that decide when.

Both simulated source systems misbehave the way the real ones do: rate limiting, transient
5xx (or envelope code 50000), bodies cut short, tokens and cursors that expire, rows updated
while a client walks the pages. `Faults` says how often; `FaultDice` rolls for one server
instance, seeded so a run is repeatable, and never lets a fault become permanent: after
`MAX_CONSECUTIVE_FAULTS` faulted answers in a row the next request is served clean, so a
client that retries always gets through.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from dataclasses import dataclass
from typing import Any, Mapping

# A retrying client must always get through: even at probability 1.0 one request in
# (MAX_CONSECUTIVE_FAULTS + 1) is served clean.
MAX_CONSECUTIVE_FAULTS = 3


@dataclass(frozen=True)
class Faults:
    """How often each fault happens; all off by default.

    Probabilities are per request (per page for `updates_during_walk`).
    """

    rate_limit: float = 0.0  # 429 + Retry-After / code 42900 + data.retry_after
    server_error: float = 0.0  # HTTP 502/503/504 from "the proxy", or envelope code 50000
    truncated: float = 0.0  # a body cut short (honest short Content-Length, or early close)
    token_ttl: int = 3600  # seconds a national token lives
    cursor_ttl: int = 600  # seconds a provincial cursor lives after it was issued
    updates_during_walk: float = 0.0  # a few rows of the stream re-stamped "now" after a page
    retry_after: int = 1  # seconds announced with a rate limit

    @classmethod
    def all_on(cls, **overrides: Any) -> "Faults":
        """A noisy but passable mix of every fault; keyword arguments override fields."""
        noisy = cls(
            rate_limit=0.05,
            server_error=0.05,
            truncated=0.03,
            token_ttl=5,
            cursor_ttl=5,
            updates_during_walk=0.1,
            retry_after=1,
        )
        return dataclasses.replace(noisy, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Faults":
        """Build from a JSON object (the admin endpoint); unknown names are an error."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        converted = {}
        for name, value in values.items():
            is_seconds = name in ("token_ttl", "cursor_ttl", "retry_after")
            converted[name] = int(value) if is_seconds else float(value)
        return cls(**converted)

    def __post_init__(self) -> None:
        for name in ("rate_limit", "server_error", "truncated", "updates_during_walk"):
            probability = getattr(self, name)
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {probability}")
        for name in ("token_ttl", "cursor_ttl", "retry_after"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


class FaultDice:
    """Seeded per server instance; thread-safe; caps runs of faulted answers."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._consecutive_faults = 0

    def roll(self, probability: float) -> bool:
        """True when a fault should be injected now (never more than a few in a row)."""
        if probability <= 0:
            return False
        with self._lock:
            if self._consecutive_faults >= MAX_CONSECUTIVE_FAULTS:
                return False  # the cap holds until served_clean() ends the run
            hit = self._rng.random() < probability
            if hit:
                self._consecutive_faults += 1
            return hit

    def served_clean(self) -> None:
        """A request got its real answer: the run of faults is over."""
        with self._lock:
            self._consecutive_faults = 0

    def chance(self, probability: float) -> bool:
        """A plain seeded coin (for events that are not failures, e.g. rows touched)."""
        if probability <= 0:
            return False
        with self._lock:
            return self._rng.random() < probability

    def choice(self, options: list | tuple):
        with self._lock:
            return self._rng.choice(options)

    def randint(self, low: int, high: int) -> int:
        with self._lock:
            return self._rng.randint(low, high)
