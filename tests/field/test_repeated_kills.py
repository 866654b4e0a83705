"""Scenario 1: a worker with a model deployed is SIGKILLed again and again while events
stream in, and restarted each time, twice on an empty data dir.

The kills fall at seeded random moments, each after the process has made progress since
it started. Whatever was applied but not committed comes again, and an empty disk brings
the table back from the changelog alone; at the end nothing may be lost or applied twice,
and the latest predictions equal those of a worker that never crashed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.field.harness import (
    ReadySampler,
    SteadyProducer,
    final_checks,
    findings_report,
    fleet,
    kill_and_restart,
    reference_margins,
    scoring_env,
)
from tests.services.control_plane import V1
from tests.services.event_log import rebuild, simulated_log

pytestmark = pytest.mark.field

KILLS = 5
EMPTY_DISK_RESTARTS = 2
SEED = 1301
RATE = 300  # events/s


@pytest.mark.timeout(900)
def test_repeated_sigkill_loses_and_doubles_nothing(
    worker_env: dict[str, str], kafka_bootstrap: str, redis_url: str,
    field_registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    env = scoring_env(worker_env, field_registry, V1)
    messages = simulated_log(30, 12, malformed=0.0, duplicate=0.01, late=0.0, seed=SEED)
    expected = rebuild(messages)
    reference = reference_margins(field_registry, V1, expected, tmp_path / "scorer")
    tenth = len(messages) // 10
    started = time.monotonic()
    with fleet(tmp_path) as add:
        worker = add("a", env)
        worker.start()
        # 40 % first, then a tenth more while each restart is down: every new process
        # finds input to make progress on, at any machine load.
        producer = SteadyProducer(kafka_bootstrap, env["PROFITSTREAM_APP_ID"], messages, RATE,
                                  allowed=4 * tenth)  # fmt: skip
        with ReadySampler([worker]) as sampler:
            producer.start()
            try:
                kills = kill_and_restart(worker, producer, kills=KILLS,
                                         empty_disk_restarts=EMPTY_DISK_RESTARTS, seed=SEED,
                                         input_per_restart=tenth)  # fmt: skip
                producer.allow_all()
                producer.wait_sent()
                result = final_checks(
                    bootstrap=kafka_bootstrap, redis_url=redis_url, env=env, expected=expected,
                    workers=[worker], sampler=sampler, input_times=producer.times,
                    reference=reference, version="1.0.0",
                )  # fmt: skip
            finally:
                producer.halt()
        worker.stop()  # alive until here: stop() fails if it exited by itself
    elapsed = time.monotonic() - started
    mid_stream = [
        k for k in kills if k.applied_in_life < len(messages) and k.produced < len(messages)
    ]
    with capsys.disabled():
        print(f"\n[field] repeated kills: {len(messages)} events at {RATE}/s, "
              f"{elapsed:.0f}s, settled {result.settled_s:.0f}s after the last event; "
              f"/ready samples {sampler.summary()}")  # fmt: skip
        for k in kills:
            print(f"[field]   kill {k.number}: after {k.applied_in_life:.0f} events in that "
                  f"process, {k.produced} produced; restart on "
                  f"{'an empty' if k.restart_on_empty_disk else 'the same'} disk, ready in "
                  f"{k.ready_after_s:.1f}s")  # fmt: skip
        print(
            f"kills survived: {len(kills)}, lost {result.state.lost}, "
            f"applied twice {result.state.doubled}"
        )
    assert len(kills) >= KILLS
    assert sum(k.restart_on_empty_disk for k in kills) >= EMPTY_DISK_RESTARTS
    assert len(mid_stream) == len(kills), "a kill came after the stream had ended"
    assert not result.findings, findings_report("repeated SIGKILL", result.findings)
