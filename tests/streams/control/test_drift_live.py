"""Drift on a live broker with a real worker: a model trained on one portfolio scores another
streamed in event-time order; halfway its prices double. The worker publishes a schema-valid
`drift` record per window (keyed by model), the record of the last window after the change
names the margin ratios the change moved over PSI 0.25, and the gauges carry the top
features and the prediction.

Not asserted: that the record before the change leaves them out. Most features are over
0.25 there too, and which ones varies with batching: the stream scores a client right after
its events, the reference holds every client at monthly cutoff instants
(docs/operations.md#what-drift-compares); the offline test measures the false-alarm rate on
rows drawn like the reference's."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from streams.cli.control_client import read_key_partition
from streams.stack.processes import wait_until
from tests.services.control_plane import V1
from tests.services.event_log import START, metric, produce_log, repriced, simulated_log
from tests.services.record_schemas import checked
from tests.services.worker_process import running_worker

DAY = 86_400.0
CHANGE = START + 120 * DAY  # prices double from here
# Doubled prices move these most (tests/models_store/monitoring/test_drift_on_portfolios.py).
PRICE_FEATURES = {"cost_to_revenue_30d", "realised_margin_30d"}


def _drift(env: dict[str, str], bootstrap: str) -> list[dict[str, Any]]:
    raw = asyncio.run(read_key_partition(
        [bootstrap], {}, env["PROFITSTREAM_TOPICS__MONITORING"], V1, 0))  # fmt: skip
    records = [checked("profitability-monitoring", json.loads(value)) for _, _, value in raw]
    return [r for r in records if r["kind"] == "drift" and r["model"] == V1]


@pytest.mark.timeout(600)
def test_the_drift_record_names_the_features_a_price_change_moved(
    worker_env: dict[str, str], kafka_bootstrap: str, unique: str, control_registry: Path
) -> None:
    env = {**worker_env, "PROFITSTREAM_MODEL_REGISTRY": str(control_registry),
           "PROFITSTREAM_MODEL": V1, "PROFITSTREAM_DRIFT_INTERVAL_S": "1",
           "PROFITSTREAM_DRIFT_MIN_ROWS": "150",
           # Small batches: a client is rescored (and counted) several times a week.
           "PROFITSTREAM_BATCH_MAX_EVENTS": "500"}  # fmt: skip
    messages = repriced(simulated_log(200, 7, malformed=0, duplicate=0, late=0, seed=23),
                        2.0, CHANGE)  # fmt: skip
    before = [m for m in messages if m.event_time < CHANGE]
    after = [m for m in messages if m.event_time >= CHANGE]
    last_day_end = (max(m.event_time for m in messages) // DAY + 1) * DAY
    with running_worker(env) as worker:
        produce_log(kafka_bootstrap, unique, before)

        def settled_before() -> list[dict[str, Any]]:
            return [r for r in _drift(env, kafka_bootstrap)
                    if r["window_end"] is not None and r["window_end"] >= CHANGE - DAY
                    and r["max_psi"] is not None]  # fmt: skip

        wait_until(lambda: bool(settled_before()), timeout_s=240,
                   what="a drift record of the last window before the change")  # fmt: skip
        unshifted = settled_before()[-1]
        produce_log(kafka_bootstrap, unique, after)

        def settled_after() -> list[dict[str, Any]]:
            return [r for r in _drift(env, kafka_bootstrap)
                    if r["window_end"] == last_day_end and r["max_psi"] is not None]  # fmt: skip

        wait_until(lambda: bool(settled_after()), timeout_s=240,
                   what="a drift record of the last window after the change")  # fmt: skip
        shifted = settled_after()[-1]
        psi = metric(worker, "profitstream_drift_psi")
        max_psi = metric(worker, "profitstream_drift_max_psi")
    print(f"before: {unshifted['rows']} rows, drifted {unshifted['drifted']}")
    print(f"after: {shifted['rows']} rows, drifted {shifted['drifted']}")
    assert shifted["window_start"] >= CHANGE  # the window lies wholly after the change
    assert set(shifted["drifted"]) >= PRICE_FEATURES
    assert unshifted["window_end"] <= CHANGE + DAY
    assert shifted["arm"] == "champion"
    assert shifted["experiment_id"] is None
    assert shifted["prediction"] is not None
    # Gauges: the top features and the prediction, per model and arm.
    assert len(psi) == 6
    assert all('arm="champion"' in labels and f'model="{V1}"' in labels for labels in psi)
    assert any('feature="prediction"' in labels for labels in psi)
    # The gauge holds the latest publication's figure, which may be newer than the record
    # read above (the worker publishes on): one of the records, and major drift.
    # Read after the worker stopped: every record it published is on the topic by then.
    published = [r for r in _drift(env, kafka_bootstrap) if r["max_psi"] is not None]
    (gauge,) = max_psi.values()
    assert gauge > 0.25
    assert any(r["max_psi"] == pytest.approx(gauge) for r in published), gauge
