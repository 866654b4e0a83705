"""The profitstream Grafana dashboard, as code: writes ``dashboards/profitstream.json``.

Run ``python -m deploy.grafana.build_dashboard`` after changing a panel; the JSON is
checked in (Grafana's provisioning reads it, docker-compose.yml mounts it), and
``tests/deploy/test_grafana.py`` fails when it differs from what this module builds. The
live Prometheus test runs every query below against real workers: each returns data,
except those with ``empty_when_healthy`` (the reason they may not).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards" / "profitstream.json"
UID = "profitstream"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}  # provisioning/datasources/
WIDTH = 24  # Grafana's grid
RATE = "$__rate_interval"  # Grafana's window for rate(): at least 4 scrape intervals


@dataclass(frozen=True)
class Query:
    """One PromQL target of a panel."""

    expr: str
    legend: str = ""
    empty_when_healthy: str | None = None  # why it may return nothing in a healthy system


@dataclass(frozen=True)
class Panel:
    """A panel: a time series (or a stat, a table) of its queries."""

    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""


@dataclass(frozen=True)
class Row:
    """A row of panels; ``later`` marks a row kept for panels that are not built yet."""

    title: str
    panels: tuple[Panel, ...] = ()
    later: str | None = None


def _quantiles(metric: str, by: str = "") -> tuple[Query, ...]:
    labels = f"{by}, le" if by else "le"
    prefix = f"{{{{{by}}}}} " if by else ""
    return tuple(
        Query(
            f"histogram_quantile({q}, sum by ({labels}) (rate({metric}_bucket[{RATE}])))",
            f"{prefix}p{round(q * 100)}",
        )
        for q in (0.5, 0.95, 0.99)
    )


# Why the model-quality queries may be empty: their series are per model and arm.
_SCORES = "a model's series appear once a worker scores with it"
_CLOSES = "realised figures appear once a prediction's horizon closes"

ROWS: tuple[Row, ...] = (
    Row("Workers", (
        Panel("Workers up and ready", (
            Query('sum(up{job="profitstream"})', "up"),
            Query("sum(profitstream_ready)", "ready"),
        ), kind="stat"),
        Panel("Ready per worker", (Query("profitstream_ready", "{{instance}}"),)),
        Panel("Input held, by reason", (
            Query("max by (reason) (profitstream_input_held_reason)", "{{reason}}"),
        ), description="1 while a hold or an outage keeps a worker's input from moving on"),
        Panel("Broker and Redis answer", (
            Query("profitstream_broker_connected", "broker {{instance}}"),
            Query("profitstream_redis_connected", "redis {{instance}}"),
        )),
    )),
    Row("Throughput and lag", (
        Panel("Events consumed", (
            Query(f"sum by (topic) (rate(profitstream_events_consumed_total[{RATE}]))",
                  "{{topic}}"),
        ), unit="ops"),
        Panel("Events by outcome", (
            Query(f"sum by (outcome) (rate(profitstream_event_outcomes_total[{RATE}]))",
                  "{{outcome}}"),
        ), unit="ops"),
        Panel("Consumer lag per input partition", (
            Query("max by (topic, partition) (profitstream_consumer_lag)",
                  "{{topic}}/{{partition}}"),
            Query("profitstream:consumer_lag:sum", "total"),
        ), description="End offset - next offset to process, from each worker's broker probe"),
        Panel("Seconds since the last batch", (
            Query("profitstream_last_batch_age_seconds", "{{instance}}"),
        ), unit="s"),
    )),
    Row("Batches and latency", (
        Panel("Batch phases, p95", _quantiles("profitstream_batch_phase_seconds", "phase"),
              unit="s"),
        Panel("Batch size", _quantiles("profitstream_batch_events")),
        Panel("Event to prediction latency", (
            *_quantiles("profitstream_prediction_latency_seconds"),
            Query("profitstream:prediction_latency_seconds:p99_5m", "p99 over 5m (SLO 5 s)"),
        ), unit="s", description="From the triggering event's production to its prediction's"),
        Panel("Model time per batch", _quantiles("profitstream_scoring_seconds"), unit="s"),
    )),
    Row("Predictions", (
        Panel("Predictions emitted, by reason", (
            Query(f"sum by (reason) (rate(profitstream_predictions_emitted_total[{RATE}]))",
                  "{{reason}}"),
            Query(f"sum(rate(profitstream_predictions_suppressed_total[{RATE}]))",
                  "suppressed (no meaningful change)"),
        ), unit="ops"),
        Panel("Scoring failures", (
            Query("profitstream:scoring_failures:rate5m", "clients/s left unscored"),
        ), unit="ops"),
        Panel("Feature values outside the training range", (
            Query(f"sum by (feature) "
                  f"(rate(profitstream_feature_values_outside_training_total[{RATE}]))",
                  "{{feature}}",
                  empty_when_healthy="counted per feature only once a value falls outside"),
        ), unit="ops"),
    )),
    Row("Dead letters", (
        Panel("Dead letters, by reason", (
            Query(f"sum by (source_topic, reason) "
                  f"(rate(profitstream_dead_letters_total[{RATE}]))",
                  "{{source_topic}} {{reason}}",
                  empty_when_healthy="a reason appears with its first dead letter"),
        ), unit="ops"),
        Panel("Dead letters against the input", (
            Query("profitstream:dead_letters:rate5m", "dead letters/s"),
            Query("profitstream:events_consumed:rate5m", "events/s"),
        ), unit="ops"),
    )),
    Row("Deployment and experiment", (
        Panel("Deployment per worker", (
            Query("profitstream_deployment_info", "{{instance}}: r{{revision}} {{champion}}"),
        ), kind="table", description="The deployment each worker scores with"),
        Panel("Deployment revision", (
            Query("profitstream_deployment_revision", "{{instance}}"),
        )),
        Panel("Experiment share and verdict", (
            Query("max(profitstream_experiment_share)", "challenger share"),
            Query("max by (action) (profitstream_experiment_verdict)", "verdict {{action}}"),
        )),
        Panel("Experiment guardrails broken", (
            Query("max by (guardrail) (profitstream_experiment_guardrail_broken)",
                  "{{guardrail}}"),
        )),
    )),
    Row("Drift per feature", (
        Panel("Largest feature PSI, per model and arm", (
            Query("max by (model, arm) (profitstream_drift_max_psi)", "{{model}} {{arm}}"),
        ), description="Over the drift window; < 0.1 none, 0.1-0.25 moderate, > 0.25 major "
                       "(the alert: > 0.2 for 15m). 0 until the window holds enough rows"),
        Panel("PSI of the top features and the prediction", (
            Query("max by (model, arm, feature) (profitstream_drift_psi)",
                  "{{model}} {{arm}} {{feature}}",
                  empty_when_healthy="published once a window holds PROFITSTREAM_DRIFT_MIN_ROWS "
                                     "scored rows"),
        )),
        Panel("Drift window rows and driver shift", (
            Query("sum by (model, arm) (profitstream_drift_window_rows)",
                  "rows {{model}} {{arm}}"),
            Query("max by (model, arm) (profitstream_drift_driver_shift)",
                  "driver shift {{model}} {{arm}}",
                  empty_when_healthy="set once an emitted prediction's drivers are counted"),
        ), description="Scored rows behind the PSI; how far the top SHAP drivers' shares moved "
                       "from training (0 same, 1 disjoint)"),
    )),
    Row("Estimated vs realised accuracy", (
        Panel("MAE: estimated now, realised, card", (
            Query("avg by (model, arm) (profitstream_accuracy_estimated_mae)",
                  "estimated {{model}} {{arm}}", empty_when_healthy=_SCORES),
            Query("avg by (model, arm) (profitstream_accuracy_realised_mae)",
                  "realised {{model}} {{arm}}", empty_when_healthy=_CLOSES),
            Query("max by (model, arm) (profitstream_accuracy_reference_mae)",
                  "test rows {{model}} {{arm}}", empty_when_healthy=_SCORES),
        ), description="In the model's target (margin ratio or money). Estimated: the "
           "label-free estimate on the clients scored within the estimate span; realised: "
           "each worker's last N closed outcomes (averaged over workers); the card's test "
           "MAE for reference (the alert fires at 1.5x)"),
        Panel("Realised bias", (
            Query("avg by (model, arm) (profitstream_accuracy_realised_bias)",
                  "{{model}} {{arm}}", empty_when_healthy=_CLOSES),
        ), description="Mean predicted - realised over the last N closed outcomes"),
        Panel("Outcomes seen", (
            Query("sum by (model, arm) (profitstream_accuracy_outcomes_seen)",
                  "{{model}} {{arm}}", empty_when_healthy=_SCORES),
        ), description="Closed outcomes the workers folded since they started"),
    )),
    Row("Interval coverage", (
        Panel("Interval coverage over the last N outcomes", (
            Query("min by (model, arm) (profitstream_accuracy_interval_coverage)",
                  "{{model}} {{arm}}", empty_when_healthy=_CLOSES),
        ), unit="percentunit", description="Share of realised values inside the predicted "
           "interval (lowest worker); the band is the interval's level ± 5 points"),
        Panel("Coverage broken", (
            Query("max by (model, arm) (profitstream_accuracy_coverage_broken)",
                  "{{model}} {{arm}}", empty_when_healthy=_SCORES),
        ), description="1 when a worker's full window of N outcomes lies outside the band"),
    )),
)  # fmt: skip


def queries() -> list[Query]:
    """Every query of the dashboard."""
    return [query for row in ROWS for panel in row.panels for query in panel.queries]


def _panel(panel: Panel, panel_id: int, x: int, y: int, width: int) -> dict[str, Any]:
    targets = [
        {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": q.expr,
         "legendFormat": q.legend, "instant": panel.kind == "table",
         "format": "table" if panel.kind == "table" else "time_series"}
        for i, q in enumerate(panel.queries)
    ]  # fmt: skip
    return {
        "id": panel_id, "type": panel.kind, "title": panel.title,
        "description": panel.description, "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": width, "h": 8},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {}, "targets": targets,
    }  # fmt: skip


def dashboard() -> dict[str, Any]:
    """The dashboard's JSON model."""
    panels: list[dict[str, Any]] = []
    y = 0
    for row in ROWS:
        panels.append({"id": len(panels) + 1, "type": "row", "title": row.title,
                       "collapsed": False, "gridPos": {"x": 0, "y": y, "w": WIDTH, "h": 1},
                       "panels": []})  # fmt: skip
        y += 1
        if row.later is not None:
            note = f"Not built yet (issue 15): {row.later}."
            panels.append({"id": len(panels) + 1, "type": "text", "title": f"{row.title}: later",
                           "gridPos": {"x": 0, "y": y, "w": WIDTH, "h": 3},
                           "options": {"mode": "markdown", "content": note}})  # fmt: skip
            y += 3
            continue
        width = WIDTH // len(row.panels)
        for i, panel in enumerate(row.panels):
            panels.append(_panel(panel, len(panels) + 1, i * width, y, width))
        y += 8
    return {
        "uid": UID, "title": "profitstream", "tags": ["profitstream"],
        "timezone": "utc", "schemaVersion": 39, "version": 1, "editable": True,
        "refresh": "30s", "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []}, "templating": {"list": []}, "links": [],
        "panels": panels,
    }  # fmt: skip


def render() -> str:
    """The JSON text as checked in."""
    return json.dumps(dashboard(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    OUT.write_text(render())
    print(f"wrote {OUT} ({len(queries())} queries)")


if __name__ == "__main__":
    main()
