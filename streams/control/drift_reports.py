"""Each worker's drift windows, published as `drift` records and Prometheus gauges.

Every ``drift_interval_s`` the windows that counted something since their last report go
out as ``drift`` records on `profitability-monitoring`, keyed by model (one record per
model version, arm and experiment), and the gauges are set again for every window: the
largest PSI and the window's rows per (model, arm), the PSI of the top features and of the
prediction. Windows no row reached for a whole window are forgotten, with their series.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

from faust.types import TopicT

from models_store.experiments.records import DistanceFigures, DriftRecord, DriverShareFigures
from models_store.monitoring.book import DriftBook, DriftKey
from models_store.monitoring.distances import MAJOR_PSI
from models_store.monitoring.window import DAY_S, Distance, DriftSummary
from streams.control.report_loop import report_every
from streams.metrics import DRIFT_DRIVER_SHIFT, DRIFT_MAX_PSI, DRIFT_PSI, DRIFT_WINDOW_ROWS


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _figures(distance: Distance) -> DistanceFigures:
    return DistanceFigures(
        name=distance.name,
        psi=distance.psi,
        ks=_finite(distance.ks),
        wasserstein=_finite(distance.wasserstein),
        missing_share=_finite(distance.missing_share),
        reference_missing_share=_finite(distance.reference_missing_share),
    )


def drift_record(
    incarnation: str,
    key: DriftKey,
    summary: DriftSummary,
    *,
    window_days: int,
    min_rows: int,
    top: int,
    at: datetime,
) -> DriftRecord:
    """The ``drift`` record of one window (figures only once it holds ``min_rows``)."""
    evaluated = summary.rows >= min_rows
    return DriftRecord(
        worker=incarnation,
        at=at.isoformat(),
        model=key.model,
        arm=key.arm,  # type: ignore[arg-type]  # champion, challenger or shadow, by the stage
        experiment_id=key.experiment_id,
        window_days=window_days,
        window_start=None if summary.first_day is None else summary.first_day * DAY_S,
        window_end=None if summary.last_day is None else (summary.last_day + 1) * DAY_S,
        rows=summary.rows,
        late_rows=summary.late,
        min_rows=min_rows,
        max_psi=summary.max_psi if evaluated else None,
        drifted=summary.drifted(MAJOR_PSI) if evaluated else [],
        features=[_figures(d) for d in summary.features[:top]] if evaluated else [],
        prediction=_figures(summary.prediction) if evaluated and summary.prediction else None,
        drivers_k=summary.drivers_k,
        explained=summary.explained,
        driver_shift=summary.driver_shift,
        drivers=[
            DriverShareFigures(feature=d.feature, share=d.share, reference=d.reference)
            for d in summary.drivers[:top]
        ],
    )


def set_gauges(summaries: dict[DriftKey, DriftSummary], min_rows: int, top: int) -> None:
    """The drift gauges of every window (older series removed)."""
    for gauge in (DRIFT_PSI, DRIFT_MAX_PSI, DRIFT_WINDOW_ROWS, DRIFT_DRIVER_SHIFT):
        gauge.clear()
    # Two experiments' windows of one model and arm share labels: the newer one wins.
    ordered = sorted(summaries.items(), key=lambda item: item[1].last_day or 0)
    for key, summary in ordered:
        labels = {"model": key.model, "arm": key.arm}
        evaluated = summary.rows >= min_rows
        DRIFT_WINDOW_ROWS.labels(**labels).set(summary.rows)
        DRIFT_MAX_PSI.labels(**labels).set(summary.max_psi if evaluated else 0.0)
        if summary.driver_shift is not None:
            DRIFT_DRIVER_SHIFT.labels(**labels).set(summary.driver_shift)
        if not evaluated:
            continue
        shown = list(summary.features[:top])
        if summary.prediction is not None:
            shown.append(summary.prediction)
        for distance in shown:
            DRIFT_PSI.labels(**labels, feature=distance.name).set(distance.psi)


class DriftReports:
    """Publishes the drift windows of the scoring stage's book now and then."""

    def __init__(
        self, book: DriftBook, topic: TopicT, worker_id: str, *, min_rows: int, top: int
    ) -> None:
        self._book = book
        self._topic = topic
        self._min_rows = min_rows
        self._top = top
        self.incarnation = f"{worker_id}/{uuid.uuid4().hex[:12]}"
        self._reported: dict[DriftKey, int] = {}

    async def run(self, interval_s: float) -> None:
        """Report every ``interval_s`` for as long as the worker runs."""
        await report_every(self.report, interval_s, "drift")

    async def report(self) -> int:
        """Publish the windows that changed and set every gauge; return records sent."""
        for key in self._book.prune():
            self._reported.pop(key, None)
        windows = dict(self._book.windows)
        summaries = {key: window.summary() for key, window in windows.items()}
        set_gauges(summaries, self._min_rows, self._top)
        now = datetime.now(UTC)
        changed = [key for key, window in windows.items()
                   if self._reported.get(key) != window.changes]  # fmt: skip
        sent = []
        for key in changed:
            record = drift_record(self.incarnation, key, summaries[key],
                                  window_days=self._book.days, min_rows=self._min_rows,
                                  top=self._top, at=now)  # fmt: skip
            sent.append(await self._topic.send(key=key.model.encode(), value=record.to_json()))
        for future in sent:
            await future
        for key in changed:
            self._reported[key] = windows[key].changes
        return len(sent)
