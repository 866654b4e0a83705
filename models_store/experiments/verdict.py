"""What a running experiment's evidence says to do: continue, ramp, promote or stop (pure).

``ExperimentTally`` folds the experiment's records of the monitoring topic, in order:
``outcome`` records (a closed prediction of an arm: its error, once per prediction id) feed
the per-arm statistics and the sequential test after every single outcome; ``arm_health``
records (each worker's cumulative counts) feed the guardrails. ``judge`` turns the tally
into one action, first match wins:

1. a guardrail is broken (challenger error rate, p95 model-call latency, drift from the
   persistence forecast against the champion's) -> ``stop``: every client back to the
   champion;
2. the test says the champion is better -> ``stop``;
3. the test says the challenger is better -> ``promote`` (with ``auto_promote`` only);
4. the experiment ran ``max_duration_days`` -> ``stop`` (no significant difference);
5. a ramp schedule has a next step, every guardrail has enough data and holds, and the
   challenger scored ``min_samples`` clients at the current share -> ``ramp``.

Guardrails use proxies available before horizons close; only closed outcomes can promote.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from models_store.experiments.arm_health import ArmHealth, merge_health
from models_store.experiments.assignment import next_share
from models_store.experiments.design import Experiment
from models_store.experiments.records import (
    ArmCalls,
    ArmOutcomes,
    ExperimentResultRecord,
    GuardrailState,
    VerdictPart,
)
from models_store.experiments.sequential_test import (
    ArmStats,
    SequentialDesign,
    SequentialResult,
    SequentialState,
    add_outcome,
    update,
)
from models_store.labels import MONEY_TARGETS, realised_in_target

Action = Literal["continue", "ramp", "promote", "stop"]
# The guardrails every look checks, in ``guardrail_checks``'s order.
GUARDRAILS = ("error_rate", "latency_p95_ms", "drift_ratio")

# Evidence a guardrail needs before it may break (or hold, for a ramp): below it, a
# handful of slow calls or failures at start-up would decide.
MIN_ATTEMPTS = 50  # clients the challenger was asked to score (error rate)
MIN_CALLS = 20  # model calls timed (latency)
MIN_DRIFT = 50  # predictions with a defined persistence forecast, in each arm (drift)
LATENCY_QUANTILE = 0.95

# A shadow challenger's predictions are the challenger's side of the comparison.
_ARM_OF = {"champion": "champion", "challenger": "challenger", "shadow": "challenger"}


def design_of(experiment: Experiment) -> SequentialDesign:
    """The sequential test an experiment's settings ask for."""
    return SequentialDesign(alpha=experiment.alpha, min_samples=max(2, experiment.min_samples))


@dataclass
class ExperimentTally:
    """An experiment's monitoring records folded so far."""

    experiment_id: str
    design: SequentialDesign
    outcomes: dict[str, ArmStats] = field(
        default_factory=lambda: {"champion": ArmStats(), "challenger": ArmStats()}
    )
    sequential: SequentialState = field(default_factory=SequentialState)
    result: SequentialResult | None = None
    # Latest cumulative counts per (worker incarnation, deployment revision, arm).
    health: dict[tuple[str, int, str], ArmHealth] = field(default_factory=dict)
    ignored: Counter[str] = field(default_factory=Counter)
    _predictions: set[str] = field(default_factory=set)

    def add(self, record: dict[str, Any]) -> None:
        """Fold one monitoring record (records of other experiments or kinds are ignored)."""
        if record.get("experiment_id") != self.experiment_id:
            return
        kind = record.get("kind")
        try:
            if kind == "outcome":
                self._outcome(record)
            elif kind == "arm_health":
                self._health(record)
        except (KeyError, TypeError, ValueError):
            self.ignored["malformed"] += 1

    def _outcome(self, record: dict[str, Any]) -> None:
        arm = _ARM_OF.get(str(record.get("arm")))
        prediction_id = str(record["prediction_id"])
        if arm is None:
            self.ignored["no_arm"] += 1
            return
        if prediction_id in self._predictions:
            self.ignored["repeated"] += 1  # at-least-once delivery: count each prediction once
            return
        # The realised value in the model's own target (records before targets were named
        # in them are of the ratio): money is compared with money, a ratio with a ratio.
        target = str(record.get("target") or "margin_ratio")
        realised = (
            realised_in_target(target, float(record["revenue"]), float(record["cost"]))
            if target in MONEY_TARGETS
            else record.get("realised")
        )
        predicted = record.get("predicted")
        if realised is None or predicted is None:
            self.ignored["undefined_margin"] += 1  # no revenue in the horizon: no ratio
            return
        lower, upper = record.get("lower"), record.get("upper")
        lower = -math.inf if lower is None else float(lower)
        upper = math.inf if upper is None else float(upper)
        stats = add_outcome(self.outcomes[arm], float(predicted), float(realised), lower, upper)
        self.outcomes[arm] = stats
        self._predictions.add(prediction_id)
        self.sequential, self.result = update(
            self.sequential, self.outcomes["champion"], self.outcomes["challenger"], self.design
        )

    def _health(self, record: dict[str, Any]) -> None:
        arm = _ARM_OF.get(str(record.get("arm")))
        if arm is None:
            self.ignored["no_arm"] += 1
            return
        key = (str(record["worker"]), int(record["deployment_revision"]), arm)
        counts = ArmHealth.from_dict(record)
        known = self.health.get(key)
        # Cumulative: an older record delivered late never replaces a newer one.
        if known is None or counts.attempts + counts.calls >= known.attempts + known.calls:
            self.health[key] = counts

    def arm_health(self, arm: str, revision: int | None = None) -> ArmHealth:
        """An arm's counts over every worker (at one deployment revision, if given)."""
        return merge_health(
            counts
            for (_, at, name), counts in self.health.items()
            if name == arm and (revision is None or at == revision)
        )


@dataclass(frozen=True)
class GuardrailCheck:
    """One guardrail at this look: ``value`` is None until it has enough evidence."""

    name: str
    value: float | None
    limit: float

    @property
    def breached(self) -> bool | None:
        """Whether the value is beyond the limit (None: not enough evidence yet)."""
        return None if self.value is None else self.value > self.limit

    def describe(self) -> str:
        """E.g. ``error_rate 0.12 > 0.01``."""
        shown = "n/a" if self.value is None else f"{self.value:.4g}"
        return f"{self.name} {shown} {'>' if self.breached else '<='} {self.limit:g}"


@dataclass(frozen=True)
class Verdict:
    """The action the evidence calls for, why, and the guardrails behind it."""

    action: Action
    reason: str
    guardrails: tuple[GuardrailCheck, ...]
    share: float | None = None  # the next share, for ``ramp``


def guardrail_checks(experiment: Experiment, tally: ExperimentTally) -> tuple[GuardrailCheck, ...]:
    """The experiment's guardrails against the challenger's counts so far."""
    limits = experiment.guardrails
    challenger, champion = tally.arm_health("challenger"), tally.arm_health("champion")
    error_rate = challenger.error_rate if challenger.attempts >= MIN_ATTEMPTS else None
    latency = challenger.latency_quantile_ms(LATENCY_QUANTILE)
    drift = None
    if min(challenger.drift_n, champion.drift_n) >= MIN_DRIFT and champion.drift > 0:
        drift = challenger.drift / champion.drift
    return (
        GuardrailCheck(GUARDRAILS[0], error_rate, limits["max_error_rate"]),
        GuardrailCheck(GUARDRAILS[1], latency if challenger.calls >= MIN_CALLS else None,
                       limits["max_latency_ms"]),
        GuardrailCheck(GUARDRAILS[2], drift, limits["max_drift_ratio"]),
    )  # fmt: skip


def judge(
    experiment: Experiment, deployment_revision: int, tally: ExperimentTally, now: float
) -> Verdict:
    """The one action to take now (``now``: epoch seconds, against the start's broker time)."""
    checks = guardrail_checks(experiment, tally)
    broken = [check for check in checks if check.breached]
    if broken:
        what = ", ".join(check.describe() for check in broken)
        return Verdict("stop", f"guardrail broken: {what}", checks)
    result = tally.result
    if result is not None and result.decision == "champion_better":
        return Verdict("stop", f"the champion is better ({_evidence(result)})", checks)
    if result is not None and result.decision == "challenger_better":
        if experiment.auto_promote:
            return Verdict("promote", f"the challenger is better ({_evidence(result)})", checks)
        return Verdict("continue", f"the challenger is better ({_evidence(result)}); "
                       "promote it by hand (auto-promotion is off)", checks)  # fmt: skip
    ran_days = (now - experiment.started_at) / 86_400
    if ran_days >= experiment.max_duration_days:
        return Verdict("stop", f"ran {ran_days:.1f} days (max {experiment.max_duration_days:g}) "
                       "without a significant difference", checks)  # fmt: skip
    step = next_share(experiment.schedule, experiment.share) if experiment.mode == "ab" else None
    if step is not None:
        at_share = tally.arm_health("challenger", deployment_revision).attempts
        if all(check.breached is False for check in checks) and at_share >= experiment.min_samples:
            return Verdict("ramp", f"guardrails hold after {at_share} challenger clients at "
                           f"{experiment.share:.0%}", checks, share=step)  # fmt: skip
    return Verdict("continue", "collecting evidence", checks)


def _evidence(result: SequentialResult) -> str:
    return (
        f"MAE {result.mae_champion:.4f} vs {result.mae_challenger:.4f}, "
        f"p={result.p_value:.2g}, n={result.n_champion}/{result.n_challenger}"
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def result_record(
    experiment: Experiment,
    champion: str | None,
    deployment_revision: int,
    tally: ExperimentTally,
    verdict: Verdict,
    now: float,
    actions: str,
    monitor: str,
) -> ExperimentResultRecord:
    """The monitoring topic's ``experiment_result`` record (no NaN: undefined is null)."""
    outcomes = {
        arm: ArmOutcomes(n=stats.n, mae=stats.mae, bias=stats.bias, coverage=stats.coverage)
        for arm, stats in tally.outcomes.items()
    }
    health = {}
    for arm in ("champion", "challenger"):
        counts = tally.arm_health(arm)
        health[arm] = ArmCalls(
            scored=counts.scored,
            failures=counts.failures,
            error_rate=counts.error_rate,
            latency_p95_ms=_finite(counts.latency_quantile_ms(LATENCY_QUANTILE)),
            drift=_finite(counts.drift),
        )
    return ExperimentResultRecord(
        experiment_id=experiment.experiment_id,
        at=datetime.fromtimestamp(now, UTC).isoformat(),
        deployment_revision=deployment_revision,
        champion=champion,
        challenger=experiment.challenger,
        mode=experiment.mode,
        share=experiment.share,
        outcomes=outcomes,
        test=tally.result,
        health=health,
        guardrails=[
            GuardrailState(
                name=c.name,
                value=None if c.value is None else _finite(c.value),
                limit=c.limit,
                breached=c.breached,
            )
            for c in verdict.guardrails
        ],
        verdict=VerdictPart(action=verdict.action, reason=verdict.reason, share=verdict.share),
        actions=actions,
        ignored=dict(tally.ignored),
        monitor=monitor,
    )
