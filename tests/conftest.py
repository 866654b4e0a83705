"""Live services for the test session, and unique names so tests never see each other's data.

``PROFITSTREAM_TEST_KAFKA``: tansu (default) | apache | docker | host:port.
``PROFITSTREAM_TEST_REDIS``: valkey (default) | redis-server | docker | redis://...
Tests that take ``kafka_bootstrap`` / ``redis_url`` are marked ``kafka`` / ``redis``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.settings import TopicNames
from streams.stack.processes import free_port
from tests.services.control_plane import two_version_registry
from tests.services.kafka_service import kafka_broker
from tests.services.redis_service import redis_server

KAFKA_CHOICE = os.environ.get("PROFITSTREAM_TEST_KAFKA", "tansu")
REDIS_CHOICE = os.environ.get("PROFITSTREAM_TEST_REDIS", "valkey")


def pytest_report_header() -> str:
    return f"profitstream services: kafka={KAFKA_CHOICE} redis={REDIS_CHOICE}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "kafka_bootstrap" in fixtures:
            item.add_marker(pytest.mark.kafka)
        if "redis_url" in fixtures:
            item.add_marker(pytest.mark.redis)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of the session's live broker."""
    with kafka_broker(KAFKA_CHOICE, tmp_path_factory.mktemp("kafka")) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the session's live Redis."""
    with redis_server(REDIS_CHOICE, tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def control_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One trained model registered as 1.0.0, and again (same trees) as 2.0.0: trained once
    per session, shared by every test that deploys a model."""
    return two_version_registry(tmp_path_factory.mktemp("models"))


@pytest.fixture
def unique() -> str:
    """A fresh name for app ids, topics and Redis namespaces."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def worker_env(kafka_bootstrap: str, redis_url: str, unique: str, tmp_path: Path) -> dict[str, str]:
    """Environment for a worker of its own: unique app id, topics, data dir and web port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFITSTREAM_")}
    env.update(
        {
            "PROFITSTREAM_BROKER": f"kafka://{kafka_bootstrap}",
            "PROFITSTREAM_REDIS_URL": redis_url,
            "PROFITSTREAM_APP_ID": unique,
            "PROFITSTREAM_DATA_DIR": str(tmp_path / "data"),
            "PROFITSTREAM_WEB_PORT": str(free_port()),
            "PROFITSTREAM_TOPIC_PARTITIONS": "4",
            "PROFITSTREAM_BROKER_SESSION_TIMEOUT_S": "6",
        }
    )
    for topic in TopicNames.model_fields:
        env[f"PROFITSTREAM_TOPICS__{topic.upper()}"] = f"{unique}-{topic}"
    return env
