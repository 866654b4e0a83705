"""Splits of the (client, cutoff) rows into training, validation and test (pure).

A row at cutoff c has its features as of just before c and its label in (c, c+H]. Rows
*fit* (training rows fit the models, validation rows tune them, choose the blend and
calibrate the interval) and rows *judge* (validation rows judge training, test rows judge
both). The one invariant: a fitting row's label never overlaps the label of a row it is
judged by, and for the same client it closes before that row's cutoff (c_fit + H <= c),
so no outcome that is judged was learnt, and no client's future trains the judgement of
its past.

- **time**: every client, roles by cutoff: the last test cutoffs, validation cutoffs whose
  horizons close by the first test cutoff, and training cutoffs whose horizons close by
  the first validation cutoff. It measures what a model trained now does on the next
  horizon, and needs a span of one schedule step plus three horizons.
- **clients**: clients are hashed (sha256 of the id, no seed: a client keeps its group
  across retrainings) into training (60%), validation (20%) and test (20%) groups. The
  validation and test groups are judged at the last cutoffs; training clients train at
  every cutoff, and the other groups' earlier rows train too when their horizon closes by
  the group's first judged cutoff (the time purge, per client). It needs one cutoff with a
  whole horizon after it, but it measures generalisation to other clients over the same
  period: a shock that hits every client in the test horizon is also in training labels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from features.windows import DAY_SECONDS
from models_store.errors import TrainingDataError
from models_store.training.cutoffs import day_text, is_explicit, schedule

SplitKind = Literal["time", "clients"]
SplitChoice = Literal["auto", "time", "clients"]
Role = Literal["train", "validation", "test"]
# Share of clients in each group of the client split (cumulative bounds of the hash).
CLIENT_SHARES: dict[Role, float] = {"train": 0.6, "validation": 0.2, "test": 0.2}
# Validation and test cutoffs when not given: at most this many each.
MAX_AUTO_CUTOFFS = 3
ROLES: tuple[Role, ...] = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitPlan:
    """Which rows fit and which judge: the kind, each role's cutoffs, and why this kind."""

    kind: SplitKind
    horizon_s: float
    train: list[float]  # cutoffs with training rows
    validation: list[float]
    test: list[float]
    reason: str = ""

    @property
    def cutoffs(self) -> list[float]:
        """Every cutoff some row of the split is at."""
        return sorted({*self.train, *self.validation, *self.test})

    def role(self, client_id: str, cutoff: float) -> Role | None:
        """The role of the row (client, cutoff); None when it is purged."""
        if self.kind == "time":
            for name, cutoffs in zip(ROLES, (self.train, self.validation, self.test), strict=True):
                if cutoff in cutoffs:
                    return name
            return None
        group = client_group(client_id)
        if group == "train":
            return "train" if cutoff in self.train else None
        judged = self.validation if group == "validation" else self.test
        if cutoff in judged:
            return group
        return "train" if cutoff in self.train and cutoff + self.horizon_s <= judged[0] else None


def client_group(client_id: str) -> Role:
    """The client split's group of a client: a hash, the same in every training."""
    position = int.from_bytes(hashlib.sha256(client_id.encode()).digest()[:8], "big") / 2**64
    if position < CLIENT_SHARES["train"]:
        return "train"
    return "validation" if position < 1 - CLIENT_SHARES["test"] else "test"


def row_roles(plan: SplitPlan, clients: pd.Series, cutoffs: pd.Series) -> np.ndarray:
    """``plan.role`` of every row (an object array, None where purged), computed per
    client group and cutoff rather than per row."""
    groups = clients.map({c: client_group(c) for c in clients.unique()}).to_numpy()
    times = cutoffs.to_numpy(dtype=np.float64)
    roles = np.full(len(times), None, dtype=object)
    if plan.kind == "time":
        for name, role_cutoffs in zip(ROLES, (plan.train, plan.validation, plan.test), strict=True):
            roles[np.isin(times, role_cutoffs)] = name
        return roles
    trains = np.isin(times, plan.train)
    roles[(groups == "train") & trains] = "train"
    for name, judged in (("validation", plan.validation), ("test", plan.test)):
        mine = groups == name
        roles[mine & trains & (times + plan.horizon_s <= judged[0])] = "train"
        roles[mine & np.isin(times, judged)] = name
    return roles


def purged_split(
    cutoffs: list[float], horizon_s: float, validation: int = 3, test: int = 3
) -> SplitPlan | None:
    """The time split with ``validation`` and ``test`` cutoffs: the last ``test`` cutoffs
    test, the ``validation`` latest before them whose horizon closes by the first test
    cutoff validate, and every cutoff whose horizon closes by the first validation cutoff
    trains. None when no cutoff is left to train."""
    if validation < 1 or test < 1:
        raise TrainingDataError("--validation-cutoffs and --test-cutoffs must be at least 1")
    ordered = sorted(cutoffs)
    if len(ordered) < test:
        return None
    test_cutoffs = ordered[-test:]
    before_test = [c for c in ordered[:-test] if c + horizon_s <= test_cutoffs[0]]
    if len(before_test) < validation:
        return None
    validation_cutoffs = before_test[-validation:]
    train_cutoffs = [c for c in before_test if c + horizon_s <= validation_cutoffs[0]]
    if not train_cutoffs:
        return None
    return SplitPlan("time", horizon_s, train_cutoffs, validation_cutoffs, test_cutoffs)


def time_split(
    cutoffs: list[float], horizon_s: float, validation: int | None, test: int | None
) -> SplitPlan | None:
    """The time split; a count not given is chosen: the largest n <= 3 that leaves at
    least as many training cutoffs as validation and test ones together, else 1."""
    if validation is not None and test is not None:
        return purged_split(cutoffs, horizon_s, validation, test)
    for n in range(MAX_AUTO_CUTOFFS, 0, -1):
        v, t = validation or n, test or n
        split = purged_split(cutoffs, horizon_s, v, t)
        if split is not None and len(split.train) >= v + t:
            return split
    return purged_split(cutoffs, horizon_s, validation or 1, test or 1)


def client_split(
    cutoffs: list[float], horizon_s: float, validation: int | None, test: int | None
) -> SplitPlan | None:
    """The client split; validation and test groups are judged at the last ``validation``
    / ``test`` cutoffs (when not given: the last three, or all when fewer). None when
    there are fewer cutoffs than asked for."""
    ordered = sorted(cutoffs)
    v = validation or min(MAX_AUTO_CUTOFFS, len(ordered))
    t = test or min(MAX_AUTO_CUTOFFS, len(ordered))
    if not ordered or v > len(ordered) or t > len(ordered):
        return None
    return SplitPlan("clients", horizon_s, ordered, ordered[-v:], ordered[-t:])


def _split(
    kind: SplitKind, cutoffs: list[float], horizon_s: float, v: int | None, t: int | None
) -> SplitPlan | None:
    return (time_split if kind == "time" else client_split)(cutoffs, horizon_s, v, t)


@dataclass(frozen=True)
class SplitRequest:
    """What the user asked of the split: the schedule, the horizon, the kind, the counts."""

    spec: str  # --cutoffs
    horizon_s: float
    kind: SplitChoice = "auto"
    validation: int | None = None
    test: int | None = None

    def fits(self, kind: SplitKind, start: float, end: float, **changes: object) -> bool:
        """Whether a ``kind`` split fits the span [start, end), with some options changed."""
        spec = str(changes.get("spec", self.spec))
        horizon_s = float(changes.get("horizon_s", self.horizon_s))  # type: ignore[arg-type]
        v = changes.get("validation", self.validation)
        t = changes.get("test", self.test)
        if horizon_s >= end - start:
            return False
        try:
            cutoffs = schedule(spec, start, end, horizon_s)
        except TrainingDataError:
            return False
        return _split(kind, cutoffs, horizon_s, v, t) is not None  # type: ignore[arg-type]


def plan_split(request: SplitRequest, start: float, end: float) -> SplitPlan:
    """The split of the history [start, end): ``auto`` is the time split when it fits,
    else the client split. When nothing fits, one error that states the span needed and
    available and the options that would fit (computed, not guessed)."""
    cutoffs = schedule(request.spec, start, end, request.horizon_s) if end > start else []
    span = _days(end - start)
    kinds: list[SplitKind] = ["time", "clients"] if request.kind == "auto" else [request.kind]
    for kind in kinds:
        plan = _split(kind, cutoffs, request.horizon_s, request.validation, request.test)
        if plan is None:
            continue
        if request.kind != "auto":
            reason = f"--split {kind}"
        elif kind == "time":
            reason = f"auto: the {span}-day history fits a time split"
        else:
            need = needed_days("time", request, start)
            reason = (
                f"auto: the {span}-day history is too short for a time split with a "
                f"{_days(request.horizon_s)}-day horizon"
                + (f" (it needs {need} days)" if need else "")
            )
        return SplitPlan(plan.kind, plan.horizon_s, plan.train, plan.validation, plan.test,
                         reason)  # fmt: skip
    raise TrainingDataError(split_error(request, start, end))


def needed_days(kind: SplitKind, request: SplitRequest, start: float) -> int | None:
    """The shortest span (whole days from ``start``) a ``kind`` split fits with the
    request's schedule, horizon and counts; None for explicit dates (they fix the span)."""
    if is_explicit(request.spec):
        return None
    low, high = _days(request.horizon_s), _days(request.horizon_s) * 4 + 3 * 366
    if not request.fits(kind, start, start + high * DAY_SECONDS):
        return None
    while low + 1 < high:  # fits(high), not fits(low): more days only add cutoffs
        middle = (low + high) // 2
        if request.fits(kind, start, start + middle * DAY_SECONDS):
            high = middle
        else:
            low = middle
    return high


def _longest_horizon(kind: SplitKind, request: SplitRequest, start: float, end: float) -> int:
    """The longest horizon (days) shorter than the request's that fits; 0 when none does."""
    low, high = 0, _days(request.horizon_s)  # fits(low) taken as true, fits(high) false
    while low + 1 < high:
        middle = (low + high) // 2
        if request.fits(kind, start, end, horizon_s=middle * DAY_SECONDS):
            low = middle
        else:
            high = middle
    if low and not request.fits(kind, start, end, horizon_s=low * DAY_SECONDS):
        return 0
    return low


def split_error(request: SplitRequest, start: float, end: float) -> str:
    """Why no split fits the history and which single changes would make one fit."""
    horizon = _days(request.horizon_s)
    kinds: list[SplitKind] = ["time", "clients"] if request.kind == "auto" else [request.kind]
    needs = []
    for kind in kinds:
        need = needed_days(kind, request, start)
        named, what = {
            "time": ("a time split", "training, validation and test labels may not overlap"),
            "clients": ("a client split", "one cutoff with a whole horizon after it"),
        }[kind]
        needs.append(
            f"{named} needs {need} days ({what})"
            if need is not None
            else f"{named} does not fit these cutoffs ({what})"
        )
    options: list[str] = []
    for kind in kinds:
        longest = _longest_horizon(kind, request, start, end)
        if longest:
            option = f"--horizon {longest}d"
            named = {"time": "a time split", "clients": "a client split"}[kind]
            options.append(option if request.kind != "auto" else f"{option} ({named})")
    if request.kind == "time" and request.fits("clients", start, end):
        options.append("--split clients")
    if (request.validation or 1) > 1 or (request.test or 1) > 1:
        for kind in kinds:
            if request.fits(kind, start, end, validation=1, test=1):
                options.append("--validation-cutoffs 1 --test-cutoffs 1")
                break
    for denser in ("7d", "1d"):
        if request.spec.strip().lower() != denser and any(
            request.fits(kind, start, end, spec=denser) for kind in kinds
        ):
            options.append(f"--cutoffs {denser}")
            break
    options.append("a longer history")
    return (
        f"the history spans {_days(end - start)} days ({day_text(start)} to {day_text(end)}), "
        f"too short for a {horizon}-day horizon with --cutoffs {request.spec}: "
        + "; ".join(needs)
        + "; options that fit: "
        + ", ".join(dict.fromkeys(options))
    )


def _days(seconds: float) -> int:
    return round(seconds / DAY_SECONDS)
