"""The monitoring topic's records and the predictions' ``reason``: typed, and valid against
the committed schemas (pure)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from models_store.experiments.arm_health import ArmHealth, observe_call
from models_store.experiments.outcomes import Tracked, outcome_record
from models_store.experiments.records import ArmHealthRecord, monitoring_schema_file
from models_store.experiments.verdict import ExperimentTally, design_of, judge, result_record
from models_store.scoring.emission import Reason
from tests.models_store.experiments.test_verdict import EXPERIMENT, NOW, REVISION, feed_outcomes
from tests.services.record_schemas import checked

DOCS = Path(__file__).resolve().parents[3] / "docs"


def test_the_committed_schema_is_current() -> None:
    name, text = monitoring_schema_file()
    regenerate = "out of date: run `profitstream schemas --out docs` and commit the result"
    assert (DOCS / "schemas" / name).read_text() == text, f"docs/schemas/{name} {regenerate}"


def test_an_outcome_record_is_valid_and_writes_undefined_margins_as_null() -> None:
    tracked = Tracked(as_of=1.7e9, until=1.7e9 + 90 * 86_400, prediction_id="p1",
                      model="profitability@1.0.0", experiment_id=None, arm=None, predicted=0.3,
                      lower=0.1, upper=0.5, persistence=math.nan)  # fmt: skip
    record = checked("profitability-monitoring", json.loads(outcome_record(tracked).to_json()))
    assert (record["persistence"], record["realised"]) == (None, None)  # no revenue: no ratio


def test_health_and_result_records_are_valid_against_the_schema() -> None:
    counts = observe_call(ArmHealth(), latency_ms=4.0, predicted=[0.3], persistence=[0.2],
                          failures=0)  # fmt: skip
    health = ArmHealthRecord(
        worker="w/1", at="2026-11-01T12:00:00+00:00", experiment_id="exp-1",
        deployment_revision=REVISION, arm="challenger", model="profitability@2.0.0",
        latency_buckets_ms=[1.0], scored=counts.scored, failures=0,
        latency_counts=list(counts.latency_counts), drift_sum=counts.drift_sum,
        drift_n=counts.drift_n,
    )  # fmt: skip
    checked("profitability-monitoring", json.loads(health.to_json()))
    tally = ExperimentTally("exp-1", design_of(EXPERIMENT))
    empty = result_record(EXPERIMENT, None, REVISION, tally, judge(EXPERIMENT, REVISION, tally,
                          NOW), NOW, "none", "w1")  # fmt: skip
    assert checked("profitability-monitoring", json.loads(empty.to_json()))["test"] is None
    feed_outcomes(tally, 0.12, 0.06, 200)
    verdict = judge(EXPERIMENT, REVISION, tally, NOW)
    looked = result_record(EXPERIMENT, "profitability@1.0.0", REVISION, tally, verdict, NOW,
                           "on", "w1")  # fmt: skip
    record = checked("profitability-monitoring", json.loads(looked.to_json()))
    assert record["test"]["n_challenger"] == 200


def test_every_emission_reason_is_in_the_published_prediction_schema() -> None:
    schema = json.loads((DOCS / "schemas" / "profitability-predictions.schema.json").read_text())
    assert schema["$defs"]["Reason"]["enum"] == [reason.value for reason in Reason]
