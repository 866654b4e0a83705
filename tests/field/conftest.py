"""Fixtures of the field suite: a model registry with two versions and the operators' keys;
and on which broker each scenario runs.

CI runs the suite on Tansu and the broker-facing tests again on Apache Kafka. Each field
scenario runs on one of the two: on Apache Kafka those that lean on a real Kafka's own
behaviour (or only test the product, so a real Kafka is the better stage), on Tansu the two
whose session broker does not matter (a Redis outage; a Tansu of the test's own frozen).
The Apache-only ones (retention, an Apache restart) skip themselves on Tansu as before.
``PROFITSTREAM_TEST_FIELD_BROKERS=all`` runs every scenario on whichever broker is chosen.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import KAFKA_CHOICE
from tests.services.control_plane import write_keys

HERE = Path(__file__).resolve().parent

# Module, or module::test, -> the one broker of the two that runs it, and why.
ONE_BROKER: dict[str, tuple[str, str]] = {
    "test_repeated_kills.py": (
        "apache",
        "committed offsets and changelog restore after SIGKILL are the broker's",
    ),
    "test_failover.py": ("apache", "the takeover is the group coordinator's"),
    "test_poison_messages.py": ("apache", "~1 MB records, near a real Kafka's default size limit"),
    "test_model_restart.py": ("apache", "about the control log, not the broker"),
    "test_outages.py::test_redis_down_back_empty_and_flushed_the_worker_waits_and_rebuilds_the"
    "_mirror": ("tansu", "a Redis outage: the broker is not touched"),
    "test_outages.py::test_a_frozen_broker_makes_the_worker_unready_then_it_resumes_losing_"
    "nothing": ("tansu", "it freezes a Tansu of its own whatever the session's broker"),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if KAFKA_CHOICE not in ("tansu", "apache"):
        return
    if os.environ.get("PROFITSTREAM_TEST_FIELD_BROKERS") == "all":
        return
    for item in items:
        if item.path.parent != HERE:
            continue
        test = f"{item.path.name}::{getattr(item, 'originalname', item.name)}"
        where = ONE_BROKER.get(test) or ONE_BROKER.get(item.path.name)
        if where is None or where[0] == KAFKA_CHOICE:
            continue
        item.add_marker(
            pytest.mark.skip(
                reason=f"field scenario run on {where[0]} only ({where[1]}); "
                "PROFITSTREAM_TEST_FIELD_BROKERS=all runs it here too"
            )
        )


@pytest.fixture(scope="session")
def field_registry(control_registry: Path) -> Path:
    """One trained model registered as profitability@1.0.0 and again (same trees) as 2.0.0
    (the session's shared registry: training it again would cost a minute)."""
    return control_registry


@pytest.fixture
def field_keys(tmp_path: Path) -> Path:
    """Keys of alice (admin), who signs the operators' commands."""
    return write_keys(tmp_path / "keys.json", {"alice": "admin"})
