"""Prometheus metrics of the stream path, served on ``/metrics``.

Counters and histograms are counted where things happen; the gauges of the worker's
health are set from ``WorkerHealth`` when ``/metrics`` is scraped (``publish_health``),
the experiment monitor's on each of its looks (``publish_verdict``). Partition-labelled
gauges carry only the currently assigned input partitions; every other label takes values
from a fixed set, or one series at a time (``profitstream_deployment_info``), so the
alert rules and the dashboard in ``deploy/`` see a 0, never nothing, in a healthy worker.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import get_args

from prometheus_client import Counter, Gauge, Histogram

from models_store.control.state import Deployment
from models_store.experiments.verdict import GUARDRAILS, Action, Verdict
from models_store.monitoring.accuracy import AccuracyFigures
from streams.worker_health import WorkerHealth

EVENTS_CONSUMED = Counter(
    "profitstream_events_consumed_total", "Messages read from an input topic", ["topic"]
)
DEAD_LETTERS = Counter(
    "profitstream_dead_letters_total", "Messages sent to the DLQ", ["source_topic", "reason"]
)
EVENT_OUTCOMES = Counter(
    "profitstream_event_outcomes_total",
    "Valid events by what applying them did (applied, duplicate, late, replayed, erased)",
    ["outcome"],
)
BATCH_EVENTS = Histogram(
    "profitstream_batch_events",
    "Events per processed batch",
    buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000),
)
BATCH_SECONDS = Histogram(
    "profitstream_batch_seconds",
    "Time to process one batch, Redis mirror included",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
BATCH_PHASE_SECONDS = Histogram(
    "profitstream_batch_phase_seconds",
    "Time of one phase of a batch: apply (parse, de-duplicate, apply events), "
    "features_and_scores (features of changed clients, scoring, emission decisions), "
    "acknowledged (waiting for the broker's acks of table, predictions, DLQ, and for Redis)",
    ["phase"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
CLIENTS_MIRRORED = Counter(
    "profitstream_clients_mirrored_total", "Client hashes written to the online store"
)
OFFSETS_REREAD = Counter(
    "profitstream_offsets_reread_total",
    "Input offsets the stream skipped and the worker read again itself",
    ["topic"],
)
PREDICTIONS_EMITTED = Counter(
    "profitstream_predictions_emitted_total",
    "Predictions sent to the predictions topic, by why (first, margin_moved, tier_changed, ...)",
    ["reason"],
)
PREDICTIONS_SUPPRESSED = Counter(
    "profitstream_predictions_suppressed_total",
    "Clients rescored without a meaningful change: no prediction emitted",
)
FEATURES_OUTSIDE_TRAINING = Counter(
    "profitstream_feature_values_outside_training_total",
    "Feature values scored outside the range the model saw in training (it predicts flat "
    "there: a sign of training/serving shift), per feature",
    ["feature"],
)
SCORING_FAILURES = Counter(
    "profitstream_scoring_failures_total", "Clients the model could not score (left unscored)"
)
SCORING_SECONDS = Histogram(
    "profitstream_scoring_seconds",
    "Model time for one batch of changed clients (prediction, interval, drivers)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
PREDICTION_LATENCY = Histogram(
    "profitstream_prediction_latency_seconds",
    "From the triggering event's production to its prediction being produced",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CONTROL_COMMANDS = Counter(
    "profitstream_control_commands_total",
    "Control commands this worker folded, by outcome (accepted, rejected_<reason>)",
    ["outcome"],
)
MODEL_SWITCHES = Counter(
    "profitstream_model_switches_total",
    "Input partitions that switched to a new deployment (champion or experiment)",
)
MODEL_LOAD_FAILURES = Counter(
    "profitstream_model_load_failures_total",
    "Deployed models this worker could not fetch, verify or load (it stops until fixed)",
)
CLIENTS_ERASED = Counter(
    "profitstream_clients_erased_total",
    "Client states this worker deleted from its table partitions on an erase_client command",
)
EXPERIMENT_ACTIONS = Counter(
    "profitstream_experiment_actions_total",
    "Commands the experiment monitor sent on its verdict (promote, stop, ramp)",
    ["action"],
)
OUTCOMES_JOINED = Counter(
    "profitstream_outcomes_joined_total",
    "Tracked predictions whose horizon closed: their realised margin went to the monitoring topic",
)
REDIS_FAILURES = Counter(
    "profitstream_redis_failures_total",
    "Redis calls of the worker that failed (each try counts; batches wait and try again)",
)
MIRROR_REBUILDS = Counter(
    "profitstream_mirror_rebuilds_total",
    "Rebuilds of the Redis mirror of this worker's partitions (Redis flushed or restarted empty)",
)
MIRROR_CLIENTS_REBUILT = Counter(
    "profitstream_mirror_clients_rebuilt_total",
    "Client hashes rewritten from the table by mirror rebuilds",
)
MIRROR_PREDICTIONS_MISSING = Counter(
    "profitstream_mirror_predictions_missing_total",
    "Clients rebuilt without their latest prediction: no longer on the predictions topic",
)
INPUT_HELD = Gauge(
    "profitstream_input_held",
    "1 while an assigned input partition is not read (table recovery, rebalance, models "
    "loading, a mirror rebuild)",
    ["topic", "partition"],
)
CONSUMER_LAG = Gauge(
    "profitstream_consumer_lag",
    "Records of an assigned input partition not processed yet: end offset - next offset, "
    "as of the last broker probe (Tansu under-reports end offsets: too low there)",
    ["topic", "partition"],
)
LAST_BATCH_AGE = Gauge(
    "profitstream_last_batch_age_seconds",
    "Seconds since the worker last processed a batch (since it started, before the first)",
)
BROKER_CONNECTED = Gauge(
    "profitstream_broker_connected", "1 when the last broker probe of the worker answered"
)
REDIS_CONNECTED = Gauge("profitstream_redis_connected", "1 when the last Redis call answered")
READY = Gauge("profitstream_ready", "1 when /ready answers 200")
DEPLOYMENT_REVISION = Gauge(
    "profitstream_deployment_revision",
    "Control-log revision of the deployment the worker scores with (-1: none loaded)",
)
INPUT_HELD_REASON = Gauge(
    "profitstream_input_held_reason",
    "1 while this keeps the worker's input from moving on: a hold of the reader (rebalance, "
    "table_recovery, deployment, redis_mirror_rebuild) or an outage (redis_outage: batches "
    "wait; broker_outage: nothing is fetched); 0 otherwise",
    ["reason"],
)
DEPLOYMENT_INFO = Gauge(
    "profitstream_deployment_info",
    "1 for the deployment the worker scores with: its control-log revision (none: nothing "
    "loaded), champion and challenger (name@version, empty when none), experiment id and "
    "mode (ab, shadow; empty when none)",
    ["revision", "champion", "challenger", "experiment", "mode"],
)
EXPERIMENT_SHARE = Gauge(
    "profitstream_experiment_share",
    "Share of clients the running A/B experiment gives the challenger (0: none running; a "
    "shadow experiment scores every client with both and emits the champion's, so 0 too)",
)
EXPERIMENT_GUARDRAIL_BROKEN = Gauge(
    "profitstream_experiment_guardrail_broken",
    "1 when the experiment monitor's latest look found this guardrail of the running "
    "experiment broken (error_rate, latency_p95_ms, drift_ratio); 0 otherwise, and on the "
    "workers that do not judge (only the control partition's owner does)",
    ["guardrail"],
)
EXPERIMENT_VERDICT = Gauge(
    "profitstream_experiment_verdict",
    "1 for the action the experiment monitor's latest look called for (continue, ramp, "
    "promote, stop); all 0 without a running experiment and on workers that do not judge",
    ["action"],
)
DEPLOYED_MODEL = Gauge(
    "profitstream_deployed_model_info",
    "1 for each model the worker scores with, by role (champion, challenger)",
    ["role", "name", "version"],
)
DRIFT_PSI = Gauge(
    "profitstream_drift_psi",
    "PSI of a feature's scored values (or the prediction's: feature=prediction) in the "
    "drift window of a model and arm against its training data; only the top features "
    "by PSI (PROFITSTREAM_DRIFT_TOP_FEATURES) and once the window holds enough rows",
    ["model", "arm", "feature"],
)
DRIFT_MAX_PSI = Gauge(
    "profitstream_drift_max_psi",
    "Largest PSI of a feature in the drift window of a model and arm (0 until the window "
    "holds PROFITSTREAM_DRIFT_MIN_ROWS scored rows); < 0.1 none, 0.1-0.25 moderate, > 0.25 major",
    ["model", "arm"],
)
DRIFT_WINDOW_ROWS = Gauge(
    "profitstream_drift_window_rows",
    "Scored rows in the drift window of a model and arm (the evidence behind its PSI)",
    ["model", "arm"],
)
DRIFT_DRIVER_SHIFT = Gauge(
    "profitstream_drift_driver_shift",
    "How far the top-k SHAP drivers' shares of emitted predictions moved from training in "
    "the drift window (0 same, 1 disjoint)",
    ["model", "arm"],
)


def deployment_labels(deployment: Deployment | None, models: Mapping[str, str]) -> dict[str, str]:
    """The labels of ``profitstream_deployment_info`` for the deployment the worker scores
    with (None: none loaded) and its loaded models (role -> ``name@version``)."""
    experiment = None if deployment is None else deployment.experiment
    return {
        "revision": "none" if deployment is None else str(deployment.revision),
        "champion": models.get("champion", ""),
        "challenger": models.get("challenger", ""),
        "experiment": "" if experiment is None else experiment.experiment_id,
        "mode": "" if experiment is None else experiment.mode,
    }


def experiment_share(deployment: Deployment | None) -> float:
    """The challenger's share of clients in a running A/B experiment, else 0."""
    experiment = None if deployment is None else deployment.experiment
    return experiment.share if experiment is not None and experiment.mode == "ab" else 0.0


def verdict_values(verdict: Verdict | None) -> tuple[dict[str, int], dict[str, int]]:
    """(guardrail -> broken, action -> chosen) of a monitor's look, as 0/1 for every
    guardrail and action (``None``: this worker judges no experiment now)."""
    breached = {} if verdict is None else {c.name: bool(c.breached) for c in verdict.guardrails}
    guardrails = {name: int(breached.get(name, False)) for name in GUARDRAILS}
    actions = {a: int(verdict is not None and verdict.action == a) for a in get_args(Action)}
    return guardrails, actions


def publish_verdict(verdict: Verdict | None) -> None:
    """Set the experiment monitor's gauges from its latest look."""
    guardrails, actions = verdict_values(verdict)
    for name, broken in guardrails.items():
        EXPERIMENT_GUARDRAIL_BROKEN.labels(guardrail=name).set(broken)
    for action, chosen in actions.items():
        EXPERIMENT_VERDICT.labels(action=action).set(chosen)


publish_verdict(None)  # every worker shows 0s until (and unless) its monitor judges


def publish_health(
    health: WorkerHealth, ready: bool, deployment: Deployment | None, models: Mapping[str, str]
) -> None:
    """Set the health gauges. ``deployment``: the one the worker scores with (None: none
    loaded); ``models``: role -> ``name@version`` of its loaded models."""
    INPUT_HELD.clear()
    for topic, partition in health.next_offsets:
        INPUT_HELD.labels(topic=topic, partition=str(partition)).set(int(health.held is not None))
    CONSUMER_LAG.clear()
    for (topic, partition), lag in health.lags().items():
        CONSUMER_LAG.labels(topic=topic, partition=str(partition)).set(lag)
    LAST_BATCH_AGE.set(health.batch_age_s(time.monotonic()))
    BROKER_CONNECTED.set(int(health.broker_error is None))
    REDIS_CONNECTED.set(int(health.redis_error is None))
    READY.set(int(ready))
    for reason, held in health.held_reasons().items():
        INPUT_HELD_REASON.labels(reason=reason).set(int(held))
    DEPLOYMENT_REVISION.set(-1 if deployment is None else deployment.revision)
    DEPLOYMENT_INFO.clear()
    DEPLOYMENT_INFO.labels(**deployment_labels(deployment, models)).set(1)
    EXPERIMENT_SHARE.set(experiment_share(deployment))
    DEPLOYED_MODEL.clear()
    for role, ref in models.items():
        name, _, version = ref.partition("@")
        DEPLOYED_MODEL.labels(role=role, name=name, version=version).set(1)


ACCURACY_REALISED_MAE = Gauge(
    "profitstream_accuracy_realised_mae",
    "MAE of the model's last N closed outcomes on this worker (PROFITSTREAM_ACCURACY_WINDOW_"
    "OUTCOMES), in its target's unit, by model (NAME@VERSION, at most 4) and arm (champion, "
    "challenger, shadow, none); no series before an outcome closes",
    ["model", "arm"],
)
ACCURACY_REALISED_BIAS = Gauge(
    "profitstream_accuracy_realised_bias",
    "mean predicted - realised over the same outcomes",
    ["model", "arm"],
)
ACCURACY_COVERAGE = Gauge(
    "profitstream_accuracy_interval_coverage",
    "share of the same outcomes whose realised value lies inside the predicted interval",
    ["model", "arm"],
)
ACCURACY_COVERAGE_BROKEN = Gauge(
    "profitstream_accuracy_coverage_broken",
    "1 when N outcomes are in and their coverage lies outside the interval's level ± 5 "
    "points; 0 otherwise",
    ["model", "arm"],
)
ACCURACY_OUTCOMES = Gauge(
    "profitstream_accuracy_outcomes_seen",
    "closed outcomes this worker folded into the model's accuracy since it started",
    ["model", "arm"],
)
ACCURACY_ESTIMATED_MAE = Gauge(
    "profitstream_accuracy_estimated_mae",
    "label-free estimate of the model's MAE on current traffic: mean estimated |error| of the "
    "clients scored within PROFITSTREAM_ACCURACY_ESTIMATE_SPAN_S of event time; no series "
    "for a model without an error estimate",
    ["model", "arm"],
)
ACCURACY_REFERENCE_MAE = Gauge(
    "profitstream_accuracy_reference_mae",
    "the model card's MAE on its test rows (what the estimate is compared with)",
    ["model", "arm"],
)
_ACCURACY_GAUGES = (ACCURACY_REALISED_MAE, ACCURACY_REALISED_BIAS, ACCURACY_COVERAGE,
                    ACCURACY_COVERAGE_BROKEN, ACCURACY_OUTCOMES, ACCURACY_ESTIMATED_MAE,
                    ACCURACY_REFERENCE_MAE)  # fmt: skip


def publish_accuracy(figures: list[AccuracyFigures]) -> None:
    """Set the accuracy gauges to the book's figures (a model the book dropped loses its
    series)."""
    for gauge in _ACCURACY_GAUGES:
        gauge.clear()
    for entry in figures:
        labels = {"model": entry.model, "arm": entry.arm}
        ACCURACY_OUTCOMES.labels(**labels).set(entry.outcomes_seen)
        ACCURACY_COVERAGE_BROKEN.labels(**labels).set(int(bool(entry.coverage_broken)))
        if entry.realised is not None:
            ACCURACY_REALISED_MAE.labels(**labels).set(entry.realised.mae)
            ACCURACY_REALISED_BIAS.labels(**labels).set(entry.realised.bias)
            ACCURACY_COVERAGE.labels(**labels).set(entry.realised.coverage)
        if entry.estimated_mae is not None:
            ACCURACY_ESTIMATED_MAE.labels(**labels).set(entry.estimated_mae)
        if entry.facts is not None and entry.facts.reference_mae is not None:
            ACCURACY_REFERENCE_MAE.labels(**labels).set(entry.facts.reference_mae)
