"""How an experiment arm's model behaves before any horizon closes (pure).

Outcomes take a horizon (90 days of event time) to arrive; an experiment's guardrails
cannot wait that long. Each worker counts, per arm, what its model did: clients scored,
clients it could not score, how long each model call took, and how far its predictions
sit from the persistence forecast (the client's own realised margin of the last 90 days).
The counts are cumulative per worker incarnation, so the latest record of each
incarnation is all a monitor keeps, and records repeated or reordered change nothing.
These proxies may stop an experiment (guardrails), never promote one.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Upper bounds (ms) of the model-call latency buckets; the last bucket is unbounded.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000,
)  # fmt: skip


def _empty_counts() -> tuple[int, ...]:
    return (0,) * (len(LATENCY_BUCKETS_MS) + 1)


@dataclass(frozen=True)
class ArmHealth:
    """Cumulative counts of one arm's model on one worker (or merged over workers)."""

    scored: int = 0
    failures: int = 0
    latency_counts: tuple[int, ...] = field(default_factory=_empty_counts)
    drift_sum: float = 0.0  # sum of |predicted - persistence| where persistence is defined
    drift_n: int = 0

    @property
    def attempts(self) -> int:
        """Clients the model was asked to score."""
        return self.scored + self.failures

    @property
    def error_rate(self) -> float:
        """Share of attempts the model could not score (0.0 before any)."""
        return self.failures / self.attempts if self.attempts else 0.0

    @property
    def calls(self) -> int:
        """Model calls timed."""
        return sum(self.latency_counts)

    @property
    def drift(self) -> float:
        """Mean |predicted - persistence| (NaN before any defined persistence)."""
        return self.drift_sum / self.drift_n if self.drift_n else math.nan

    def latency_quantile_ms(self, q: float) -> float:
        """Upper bound of the bucket holding the ``q`` quantile of call latency (NaN with no
        calls; inf when it falls in the unbounded bucket)."""
        total = self.calls
        if not total:
            return math.nan
        rank = q * total
        running = 0
        for index, count in enumerate(self.latency_counts):
            running += count
            if running >= rank and count:
                return LATENCY_BUCKETS_MS[index] if index < len(LATENCY_BUCKETS_MS) else math.inf
        return math.inf

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts (the buckets are implied by ``LATENCY_BUCKETS_MS``)."""
        return {
            "scored": self.scored,
            "failures": self.failures,
            "latency_counts": list(self.latency_counts),
            "drift_sum": self.drift_sum,
            "drift_n": self.drift_n,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArmHealth:
        """The counts a record carries; ``ValueError`` when they do not fit."""
        counts = tuple(int(count) for count in data["latency_counts"])
        if len(counts) != len(LATENCY_BUCKETS_MS) + 1 or min(counts) < 0:
            raise ValueError(f"latency_counts must be {len(LATENCY_BUCKETS_MS) + 1} counts >= 0")
        health = cls(int(data["scored"]), int(data["failures"]), counts,
                     float(data["drift_sum"]), int(data["drift_n"]))  # fmt: skip
        if min(health.scored, health.failures, health.drift_n) < 0 or not math.isfinite(
            health.drift_sum
        ):
            raise ValueError("counts must be >= 0 and drift_sum finite")
        return health


def observe_call(
    health: ArmHealth,
    *,
    latency_ms: float,
    predicted: Iterable[float],
    persistence: Iterable[float],
    failures: int,
) -> ArmHealth:
    """``health`` after one model call: its latency, the margins it predicted (beside each
    client's persistence forecast, NaN where undefined) and the clients it failed."""
    counts = list(health.latency_counts)
    counts[bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)] += 1
    scored = drift_n = 0
    drift_sum = 0.0
    for margin, naive in zip(predicted, persistence, strict=True):
        scored += 1
        if math.isfinite(naive) and math.isfinite(margin):
            drift_sum += abs(margin - naive)
            drift_n += 1
    return ArmHealth(
        scored=health.scored + scored,
        failures=health.failures + failures,
        latency_counts=tuple(counts),
        drift_sum=health.drift_sum + drift_sum,
        drift_n=health.drift_n + drift_n,
    )


def merge_health(parts: Iterable[ArmHealth]) -> ArmHealth:
    """The counts of several workers together."""
    total = ArmHealth()
    for part in parts:
        total = ArmHealth(
            scored=total.scored + part.scored,
            failures=total.failures + part.failures,
            latency_counts=tuple(
                a + b for a, b in zip(total.latency_counts, part.latency_counts, strict=True)
            ),
            drift_sum=total.drift_sum + part.drift_sum,
            drift_n=total.drift_n + part.drift_n,
        )
    return total


@dataclass(frozen=True)
class HealthKey:
    """Whose counts: an arm's model, at one deployment revision of one experiment."""

    experiment_id: str
    deployment_revision: int
    arm: str
    model: str


# What a worker counts: an arm's model calls, by whose they are.
HealthBook = dict[HealthKey, ArmHealth]
