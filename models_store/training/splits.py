"""Time-based, purged splits: later cutoffs evaluate models trained on earlier ones.

A row at cutoff c has its label in (c, c+H]. A training row may only be used to judge a
later split starting at s when c + H <= s: otherwise its label would contain the very
period (and, for the same client, the very outcome) the later rows are judged on.
"""

from __future__ import annotations

from dataclasses import dataclass

from models_store.errors import TrainingDataError


@dataclass(frozen=True)
class TimeSplit:
    """Cutoffs of each role; the cutoffs between them are purged (used by none)."""

    train: list[float]
    validation: list[float]
    test: list[float]


def purged_split(
    cutoffs: list[float], horizon_s: float, validation: int = 3, test: int = 3
) -> TimeSplit:
    """The last ``test`` cutoffs test, the ``validation`` before them validate (tuning,
    blending, interval calibration), and every earlier cutoff whose horizon closes before
    the validation starts trains."""
    ordered = sorted(cutoffs)
    if validation < 1 or test < 1:
        raise TrainingDataError("--validation-cutoffs and --test-cutoffs must be at least 1")
    test_cutoffs = ordered[-test:]
    before_test = [c for c in ordered[:-test] if c + horizon_s <= test_cutoffs[0]]
    validation_cutoffs = before_test[-validation:] if len(before_test) >= validation else []
    train_cutoffs = (
        [c for c in before_test if c + horizon_s <= validation_cutoffs[0]]
        if validation_cutoffs
        else []
    )
    if not train_cutoffs:
        need = test + validation + 1
        raise TrainingDataError(
            f"{len(ordered)} cutoffs are too few for a purged split with a "
            f"{horizon_s / 86_400:.0f}-day horizon ({test} test, {validation} validation, and "
            f"at least one training cutoff whose horizon closes before validation: about "
            f"{need} cutoffs plus two horizons); use a longer history, a denser --cutoffs "
            "schedule, fewer --test-cutoffs/--validation-cutoffs or a shorter --horizon"
        )
    return TimeSplit(train_cutoffs, validation_cutoffs, test_cutoffs)
