"""What `profitstream monitor status` shows: the workers' latest `accuracy` records merged
per model version and arm, beside the latest `drift` record of the model (pure).

Each worker publishes its own figures (it closes the outcomes of its own clients); a
worker restarted under a new incarnation replaces its older one. Merging weights each
worker's figures by its outcomes (realised) or its clients (estimate), so the merged
figures are those of the union of the workers' windows. Records are folded leniently: one
that is not an accuracy record, or is malformed, is skipped and counted.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

DRIFT_TOP = 5


@dataclass(frozen=True)
class ModelStatus:
    """One model version and arm, merged over the workers."""

    model: str
    arm: str
    target: str | None
    interval_level: float | None
    reference_mae: float | None
    workers: int
    at: str
    outcomes_seen: int
    window_outcomes: int  # outcomes the realised figures are over (every worker's window)
    mae: float | None
    bias: float | None
    rmse: float | None
    coverage: float | None
    coverage_broken: bool | None
    estimated_mae_outcomes: float | None  # the estimates made with those same predictions
    estimated_mae: float | None  # on current traffic
    estimated_clients: int
    has_estimate: bool
    drift_top: list[str] | None  # None: no drift record for the model

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dict(self.__dict__)


@dataclass
class StatusFold:
    """The monitoring topic's accuracy and drift records, folded."""

    # (worker id, model, arm) -> (incarnation, record): a worker's latest incarnation only.
    latest: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    drift: dict[str, dict[str, Any]] = field(default_factory=dict)
    ignored: Counter[str] = field(default_factory=Counter)

    def add(self, record: dict[str, Any]) -> None:
        """Fold one record (other kinds pass by)."""
        kind = record.get("kind")
        try:
            if kind == "accuracy":
                self._accuracy(record)
            elif kind == "drift":
                model = record.get("model")
                if isinstance(model, str) and str(record.get("at", "")) >= str(
                    self.drift.get(model, {}).get("at", "")
                ):
                    self.drift[model] = record
        except (KeyError, TypeError, ValueError):
            self.ignored["malformed"] += 1

    def _accuracy(self, record: dict[str, Any]) -> None:
        worker = str(record["worker"]).partition("/")[0]
        key = (worker, str(record["model"]), str(record["arm"]))
        known = self.latest.get(key)
        if known is None or str(record["at"]) >= str(known["at"]):
            self.latest[key] = record

    def statuses(self) -> list[ModelStatus]:
        """Per (model, arm), the merged figures, by model then arm."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for (_, model, arm), record in self.latest.items():
            groups.setdefault((model, arm), []).append(record)
        return [
            merge(model, arm, records, drift_top(self.drift.get(model)))
            for (model, arm), records in sorted(groups.items())
        ]


def _weighted(pairs: list[tuple[float, int]]) -> float | None:
    total = sum(n for _, n in pairs)
    return math.fsum(v * n for v, n in pairs) / total if total else None


def merge(
    model: str, arm: str, records: list[dict[str, Any]], drift: list[str] | None = None
) -> ModelStatus:
    """One (model, arm)'s workers' latest records as one row."""
    realised = [r["realised"] for r in records if r.get("realised")]
    estimated = [r["estimated"] for r in records if r.get("estimated")]
    broken = [r.get("coverage_broken") for r in records]
    rmse_sq = _weighted([(float(x["rmse"]) ** 2, int(x["n"])) for x in realised])
    first = max(records, key=lambda r: str(r["at"]))
    same = [(float(x["estimated_mae"]), int(x["estimated_n"])) for x in realised
            if x.get("estimated_mae") is not None]  # fmt: skip
    now = [(float(x["mae"]), int(x["clients"])) for x in estimated if x.get("mae") is not None]
    return ModelStatus(
        model=model,
        arm=arm,
        target=first.get("target"),
        interval_level=first.get("interval_level"),
        reference_mae=first.get("reference_mae"),
        workers=len(records),
        at=str(first["at"]),
        outcomes_seen=sum(int(r.get("outcomes_seen", 0)) for r in records),
        window_outcomes=sum(int(x["n"]) for x in realised),
        mae=_weighted([(float(x["mae"]), int(x["n"])) for x in realised]),
        bias=_weighted([(float(x["bias"]), int(x["n"])) for x in realised]),
        rmse=None if rmse_sq is None else math.sqrt(rmse_sq),
        coverage=_weighted([(float(x["coverage"]), int(x["n"])) for x in realised]),
        coverage_broken=True if True in broken else False if False in broken else None,
        estimated_mae_outcomes=_weighted(same),
        estimated_mae=_weighted(now),
        estimated_clients=sum(int(x["clients"]) for x in estimated),
        has_estimate=bool(estimated),
        drift_top=drift,
    )


def drift_top(record: dict[str, Any] | None, k: int = DRIFT_TOP) -> list[str] | None:
    """The top ``k`` drifted features a ``drift`` record names (None: no record). It reads a
    list ``features`` (or ``top_features``) of names, or of objects with ``feature`` or
    ``name``, most drifted first."""
    if record is None:
        return None
    entries = record.get("top_features", record.get("features")) or []
    names = []
    for entry in entries if isinstance(entries, list) else []:
        name = entry
        if isinstance(entry, dict):
            name = entry.get("feature") or entry.get("name")
        if isinstance(name, str):
            names.append(name)
    return names[:k]
