"""The worker's data dir: one worker at a time; local table state the changelog lost is dropped."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streams.errors import ProfitstreamError
from streams.pipeline.data_dir import LocalPartition, exclusive_data_dir, stale_partitions
from streams.settings import TopicNames
from streams.stack.processes import free_port, wait_until
from tests.services.cli import assert_one_line_error, run_cli
from tests.services.event_log import produce_log, simulated_log, wait_until_consumed
from tests.services.kafka_clients import partition_counts
from tests.services.worker_process import running_worker


def _part(partition: int, offset: int | None, *, empty: bool = False) -> LocalPartition:
    return LocalPartition(partition, Path(f"client-state-{partition}.db"), empty, offset)


def test_local_state_ahead_of_its_changelog_is_stale() -> None:
    local = [
        _part(0, None),  # rows, no offset: the changelog is empty
        _part(1, 41),  # applied offset 41, the changelog ends at 10
        _part(2, 9),  # applied 9 of 10: fine
        _part(3, None),  # rows written by the worker, changelog holds them: fine
        _part(4, None, empty=True),  # nothing local: nothing to drop
    ]
    ends = {0: 0, 1: 10, 2: 10, 3: 7, 4: 0}
    assert [p.partition for p in stale_partitions(local, ends)] == [0, 1]


def test_the_data_dir_is_held_by_one_holder_at_a_time(tmp_path: Path) -> None:
    with exclusive_data_dir(tmp_path / "faust" / "app", tmp_path):
        with pytest.raises(ProfitstreamError) as raised:  # noqa: SIM117 (nested on purpose)
            with exclusive_data_dir(tmp_path / "faust" / "app", tmp_path):
                pass
        assert str(raised.value).startswith(
            f"the data dir {tmp_path} is in use by another worker (pid {os.getpid()}); "
        )
    with exclusive_data_dir(tmp_path / "faust" / "app", tmp_path):
        pass  # released when the holder is done


def test_a_second_worker_on_the_same_data_dir_exits_with_one_line(
    worker_env: dict[str, str],
) -> None:
    with running_worker(worker_env) as first:
        second = run_cli("worker", env=worker_env | {"PROFITSTREAM_WEB_PORT": str(free_port())})
        assert_one_line_error(
            second,
            f"the data dir {worker_env['PROFITSTREAM_DATA_DIR']} is in use by another worker "
            f"(pid {first.pid})",
            "--data-dir / PROFITSTREAM_DATA_DIR",
        )
        assert first.get("/ready")[0] == 200


def _delete_topics(bootstrap: str, names: list[str]) -> None:
    async def delete() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.delete_topics(names)
        finally:
            await admin.close()

    asyncio.run(delete())


def test_a_worker_whose_changelog_was_lost_starts_clean(
    worker_env: dict[str, str], kafka_bootstrap: str, unique: str
) -> None:
    """What `stack down` / `stack up` does to Tansu's topics, on any broker."""
    messages = simulated_log(5, 2, malformed=0.0, duplicate=0.0, late=0.0)
    with running_worker(worker_env) as worker:
        produce_log(kafka_bootstrap, unique, messages)
        wait_until_consumed(worker, len(messages), timeout_s=120)
    topics = [worker_env[f"PROFITSTREAM_TOPICS__{n.upper()}"] for n in TopicNames.model_fields]
    changelog = f"{unique}-client-state-changelog"
    _delete_topics(kafka_bootstrap, [*topics, changelog])
    wait_until(
        lambda: partition_counts(kafka_bootstrap, [*topics, changelog]) == {},
        timeout_s=60,
        what="the broker to delete the topics",
    )

    with running_worker(worker_env) as worker:  # on the same web port, right away
        log = worker.log_path.read_text(errors="replace")
        assert "deleted the local state of table client-state partition(s)" in log
        assert "ConsistencyError" not in log
        produce_log(kafka_bootstrap, unique, messages)
        # The progress rows went with the stale state: every event is read again.
        wait_until_consumed(worker, len(messages), timeout_s=120)
        assert worker.get("/clients/client-00000/features")[0] == 200
