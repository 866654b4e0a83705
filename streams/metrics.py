"""Prometheus metrics of the stream path, served on ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
