"""Always-valid sequential A/B test on mean absolute error: champion against challenger (pure).

The test is a two-sample mixture sequential probability ratio test (mSPRT; Johari, Pekelis,
Walsh 2017, "Always valid inference"). With θ = MAE(champion) - MAE(challenger), its
estimate θ̂ (difference of the arms' running MAEs) and V = var_c/n_c + var_x/n_x, the
statistic is the likelihood ratio of a N(0, τ²) mixture over θ against θ = 0:

    Λ = sqrt(V / (V + τ²)) · exp(τ² θ̂² / (2 V (V + τ²)))

Guarantee: under θ = 0, Λ is a non-negative martingale (for Gaussian means with known
variance), so by Ville's inequality P(Λ ever reaches 1/α) ≤ α. The p-value
min(1, 1/max Λ) is therefore valid at any stopping time: looking after every outcome and
acting on the first crossing keeps the type-I error ≤ α. A false promotion (a crossing
with θ̂ > 0 while the challenger is no better) is one of those errors, so its rate is ≤ α
too (about α/2 at θ = 0, by symmetry; less when the challenger is worse). The matching
confidence sequence θ̂ ± half_width covers θ at all times at once with probability ≥ 1 - α,
and excludes 0 exactly when Λ ≥ 1/α.

Assumptions: outcomes are independent (one tracked prediction per client at a time, so a
client's outcomes cover disjoint horizons; clients are hash-assigned to arms); the error
distributions are stable over the experiment; the CLT holds for the arms' mean absolute
errors; the variances are estimated, not known, so validity is asymptotic. No decision is
taken, and the running maximum not updated, before ``min_samples`` outcomes per arm: early
variance estimates are noisy and would inflate Λ. ``tests/models_store/
test_sequential_test.py`` checks the false-promotion rate empirically at the defaults.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Decision = Literal["continue", "challenger_better", "champion_better"]
FloatArray = NDArray[np.float64]

# E|Z| for Z ~ N(0, 1): a half-normal with scale σ has mean σ·sqrt(2/π).
HALF_NORMAL_MEAN = math.sqrt(2.0 / math.pi)


@dataclass(frozen=True)
class ArmStats:
    """Running statistics of one arm's outcomes (Welford, so they merge across workers).

    The means are 0.0 for an empty arm, so every field stays a plain finite float.
    """

    n: int = 0
    mae: float = 0.0
    abs_error_m2: float = 0.0  # sum of squared deviations of |error| from ``mae``
    bias: float = 0.0  # mean signed error, predicted - realised
    covered: int = 0  # outcomes whose realised value fell inside [lower, upper]

    @property
    def coverage(self) -> float:
        """Share of outcomes inside their prediction interval."""
        return self.covered / self.n if self.n else 0.0

    @property
    def abs_error_variance(self) -> float:
        """Sample variance (ddof=1) of the absolute error; 0.0 below two outcomes."""
        return self.abs_error_m2 / (self.n - 1) if self.n > 1 else 0.0


def add_outcome(
    stats: ArmStats, predicted: float, realised: float, lower: float, upper: float
) -> ArmStats:
    """``stats`` with one more closed prediction; refuses NaN/inf values (filter them first)."""
    if not (math.isfinite(predicted) and math.isfinite(realised)):
        raise ValueError(f"outcome must be finite: predicted={predicted}, realised={realised}")
    if math.isnan(lower) or math.isnan(upper):
        raise ValueError(f"interval bounds must not be NaN: [{lower}, {upper}]")
    error = predicted - realised
    n = stats.n + 1
    delta = abs(error) - stats.mae
    mae = stats.mae + delta / n
    return ArmStats(
        n=n,
        mae=mae,
        abs_error_m2=stats.abs_error_m2 + delta * (abs(error) - mae),
        bias=stats.bias + (error - stats.bias) / n,
        covered=stats.covered + (lower <= realised <= upper),
    )


def merge(a: ArmStats, b: ArmStats) -> ArmStats:
    """The statistics of both sets of outcomes (Chan et al.'s parallel combine)."""
    n = a.n + b.n
    if n == 0:
        return ArmStats()
    delta = b.mae - a.mae
    return ArmStats(
        n=n,
        mae=a.mae + delta * b.n / n,
        abs_error_m2=a.abs_error_m2 + b.abs_error_m2 + delta * delta * a.n * b.n / n,
        bias=a.bias + (b.bias - a.bias) * b.n / n,
        covered=a.covered + b.covered,
    )


@dataclass(frozen=True)
class SequentialDesign:
    """The test's parameters.

    ``tau`` is the standard deviation of the effect θ under H1. The mSPRT is most
    efficient for effects of about τ: the default 0.02 (margin-ratio units) is the MAE
    improvement worth swapping models for, about a fifth of a typical MAE of ~0.1. A much
    smaller τ is slow to confirm large effects, a much larger one slow on small effects;
    the type-I guarantee holds for any τ. ``variance_floor`` keeps V > 0 when an arm's
    errors are (so far) all equal.
    """

    alpha: float = 0.05
    tau: float = 0.02
    min_samples: int = 200
    variance_floor: float = 1e-10

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), not {self.alpha}")
        if not self.tau > 0.0:
            raise ValueError(f"tau must be > 0, not {self.tau}")
        if self.min_samples < 2:
            raise ValueError(f"min_samples must be >= 2 (a variance), not {self.min_samples}")
        if not self.variance_floor > 0.0:
            raise ValueError(f"variance_floor must be > 0, not {self.variance_floor}")

    @property
    def log_threshold(self) -> float:
        """ln(1/alpha): the test decides once ln Λ reaches it."""
        return math.log(1.0 / self.alpha)


@dataclass(frozen=True)
class SequentialState:
    """What the test carries between looks: the running max of ln Λ, and the decision.

    The decision is final once taken: the guarantee is for the first crossing.
    """

    max_log_likelihood_ratio: float = 0.0  # Λ = 1: p-value 1
    decision: Decision = "continue"


@dataclass(frozen=True)
class SequentialResult:
    """One look at the experiment, as published on the monitoring topic (plain JSON types).

    ``log_likelihood_ratio`` is ln Λ at this look (a log: Λ overflows a float on a clear
    effect); ``p_value`` is always valid; ``effect`` ± ``half_width`` is the confidence
    sequence for MAE(champion) - MAE(challenger), positive when the challenger is better.
    """

    decision: Decision
    log_likelihood_ratio: float
    p_value: float
    effect: float
    half_width: float
    n_champion: int
    n_challenger: int
    mae_champion: float
    mae_challenger: float

    def to_dict(self) -> dict[str, float | int | str]:
        """The result as a JSON-ready dict."""
        return asdict(self)


def log_likelihood_ratio(effect: FloatArray, v: FloatArray, tau: float) -> FloatArray:
    """ln Λ of the Gaussian-mixture likelihood ratio, elementwise."""
    t2 = tau * tau
    result: FloatArray = 0.5 * np.log(v / (v + t2)) + t2 * effect**2 / (2.0 * v * (v + t2))
    return result


def confidence_half_width(v: FloatArray, tau: float, alpha: float) -> FloatArray:
    """Half-width of the mSPRT confidence sequence at level 1 - alpha, elementwise."""
    t2 = tau * tau
    result: FloatArray = np.sqrt(
        (v * (v + t2) / t2) * (np.log((v + t2) / v) + 2.0 * math.log(1.0 / alpha))
    )
    return result


def _variance_of_difference(
    champion: ArmStats, challenger: ArmStats, design: SequentialDesign
) -> float:
    # max(n, 1): an empty arm gives a wide V rather than a division by zero.
    floor = design.variance_floor
    v_champion = max(champion.abs_error_variance, floor) / max(champion.n, 1)
    return v_champion + max(challenger.abs_error_variance, floor) / max(challenger.n, 1)


def update(
    state: SequentialState, champion: ArmStats, challenger: ArmStats, design: SequentialDesign
) -> tuple[SequentialState, SequentialResult]:
    """Look at the experiment: the new state, and the result to publish."""
    effect = champion.mae - challenger.mae
    v = np.asarray(_variance_of_difference(champion, challenger, design))
    log_lr = float(log_likelihood_ratio(np.asarray(effect), v, design.tau))
    ready = min(champion.n, challenger.n) >= design.min_samples
    max_log_lr = state.max_log_likelihood_ratio
    if ready:
        max_log_lr = max(max_log_lr, log_lr)
    decision = state.decision
    if decision == "continue" and ready and log_lr >= design.log_threshold:
        decision = "challenger_better" if effect > 0 else "champion_better"
    new_state = SequentialState(max_log_likelihood_ratio=max_log_lr, decision=decision)
    return new_state, SequentialResult(
        decision=decision,
        log_likelihood_ratio=log_lr,
        p_value=min(1.0, math.exp(-max_log_lr)),
        effect=effect,
        half_width=float(confidence_half_width(v, design.tau, design.alpha)),
        n_champion=champion.n,
        n_challenger=challenger.n,
        mae_champion=champion.mae,
        mae_challenger=challenger.mae,
    )


@dataclass(frozen=True)
class FirstDecisions:
    """Per simulated run: +1 challenger_better, -1 champion_better, 0 none; and when."""

    sign: NDArray[np.int64]
    outcomes: NDArray[np.int64]  # outcomes of both arms at the decision (0: none)
    naive_promoted: NDArray[np.bool_]  # a fixed-sample z-test peeked at the same looks


def draw_abs_errors(
    rng: np.random.Generator, runs: int, outcomes_per_arm: int, effect: float, noise: float
) -> tuple[FloatArray, FloatArray]:
    """Absolute errors (champion, challenger), each (runs, outcomes_per_arm).

    Errors are N(0, σ) with σ set so that |error| (a half-normal) has mean ``noise`` for
    the champion and ``noise - effect`` for the challenger: the spread of real errors
    shrinks with their mean, as it does here.
    """
    if not noise > 0.0 or not noise - effect > 0.0:
        raise ValueError(f"need noise > 0 and noise > effect: noise={noise}, effect={effect}")
    shape = (runs, outcomes_per_arm)
    champion = np.abs(rng.normal(0.0, noise / HALF_NORMAL_MEAN, shape))
    challenger = np.abs(rng.normal(0.0, (noise - effect) / HALF_NORMAL_MEAN, shape))
    return champion, challenger


def _running_mean_variance(errors: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Column k: mean and sample variance of each row's first k + 1 errors."""
    n = np.arange(1, errors.shape[1] + 1, dtype=np.float64)
    mean = np.cumsum(errors, axis=1) / n
    squares = np.cumsum(errors**2, axis=1)
    # Column 0 has no variance; the test never looks there (min_samples >= 2).
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = np.maximum(squares - n * mean**2, 0.0) / (n - 1.0)
    return mean, variance


def first_decisions(
    champion: FloatArray, challenger: FloatArray, design: SequentialDesign, look_every: int = 1
) -> FirstDecisions:
    """Stream each run's outcomes to the arms alternately (champion first) and test after
    every ``look_every`` outcomes, as ``update`` would; vectorised over runs."""
    if look_every < 1:
        raise ValueError(f"look_every must be >= 1, not {look_every}")
    runs, per_arm = champion.shape
    looks = np.arange(look_every, 2 * per_arm + 1, look_every)
    n_c, n_x = (looks + 1) // 2, looks // 2
    ready = np.minimum(n_c, n_x) >= design.min_samples
    looks, n_c, n_x = looks[ready], n_c[ready], n_x[ready]
    if looks.size == 0:  # the budget never reaches min_samples per arm
        none = np.zeros(runs, dtype=np.int64)
        return FirstDecisions(sign=none, outcomes=none, naive_promoted=np.zeros(runs, bool))
    mean_c, var_c = (a[:, n_c - 1] for a in _running_mean_variance(champion))
    mean_x, var_x = (a[:, n_x - 1] for a in _running_mean_variance(challenger))
    floor = design.variance_floor
    v = np.maximum(var_c, floor) / n_c + np.maximum(var_x, floor) / n_x
    effect = mean_c - mean_x
    crossed = log_likelihood_ratio(effect, v, design.tau) >= design.log_threshold
    first = np.argmax(crossed, axis=1)
    decided = crossed[np.arange(runs), first]
    sign = np.where(decided, np.sign(effect[np.arange(runs), first]), 0).astype(np.int64)
    z_alpha = NormalDist().inv_cdf(1.0 - design.alpha)
    naive = (effect / np.sqrt(v) >= z_alpha).any(axis=1)
    return FirstDecisions(
        sign=sign,
        outcomes=np.where(decided, looks[first], 0).astype(np.int64),
        naive_promoted=naive,
    )


@dataclass(frozen=True)
class SimulationSummary:
    """Rates over simulated experiments; the median counts outcomes of both arms."""

    runs: int
    promotion_rate: float
    champion_better_rate: float
    median_outcomes_at_decision: float | None  # None: no run decided
    naive_promotion_rate: float  # peeking at a fixed-sample one-sided z-test at alpha


def simulate_experiments(
    runs: int,
    effect: float,
    *,
    seed: int,
    design: SequentialDesign,
    outcomes_per_arm: int,
    look_every: int = 1,
    noise: float = 0.1,
) -> SimulationSummary:
    """Simulate ``runs`` experiments where the challenger's MAE is ``noise - effect``
    against the champion's ``noise``, each monitored until its outcome budget runs out."""
    if runs < 1 or outcomes_per_arm < 1:
        raise ValueError(f"need runs >= 1 and outcomes_per_arm >= 1: {runs}, {outcomes_per_arm}")
    rng = np.random.default_rng(seed)
    champion, challenger = draw_abs_errors(rng, runs, outcomes_per_arm, effect, noise)
    found = first_decisions(champion, challenger, design, look_every)
    decided = found.outcomes[found.sign != 0]
    return SimulationSummary(
        runs=runs,
        promotion_rate=float(np.mean(found.sign > 0)),
        champion_better_rate=float(np.mean(found.sign < 0)),
        median_outcomes_at_decision=float(np.median(decided)) if decided.size else None,
        naive_promotion_rate=float(np.mean(found.naive_promoted)),
    )
