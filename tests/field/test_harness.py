"""The field harness's own judgement of /ready samples (pure, no services): what it calls
dishonest, so a scenario that passes is known to have looked."""

from __future__ import annotations

import pytest

from tests.field.harness import STALL_S, Sample, health_violations, ready_violations

pytestmark = pytest.mark.field


def _life(
    statuses: list[tuple[int, float | None]], worker: str = "a", life: int = 1
) -> list[Sample]:
    """Samples every 0.5 s: (/ready status, batch count)."""
    return [
        Sample(i * 0.5, worker, life, True, status, "the control log" if status == 503 else None,
               200 if status else 0, count)
        for i, (status, count) in enumerate(statuses)
    ]  # fmt: skip


def test_start_up_silence_and_503_with_a_reason_are_honest() -> None:
    samples = _life([(0, None)] * 10 + [(503, None)] * 10 + [(200, n) for n in range(300)])
    assert ready_violations(samples, [float(t) for t in range(150)]) == []
    assert health_violations(samples) == []


def test_ready_while_applying_nothing_as_input_arrives_is_a_stall() -> None:
    ticks = int(2 * STALL_S / 0.5)
    samples = _life([(200, 5.0)] * ticks)
    found = ready_violations(samples, [1.0, 2.0, 3.0])
    assert len(found) == 1
    assert "applied none" in found[0]
    # Without input there is nothing to apply: idle is not stalled.
    assert ready_violations(samples, []) == []


def test_silence_after_answering_and_503_without_a_reason_are_not_honest() -> None:
    samples = _life([(200, 1.0), (0, None), (500, None)])
    samples.append(Sample(2.0, "a", 1, True, 503, None, 200, None))
    found = ready_violations(samples, [])
    assert [f.split(": ", 1)[1].split(" at ")[0] for f in found] == [
        "/ready did not answer",
        "/ready answered 500",
        "503 without naming what it waits for",
    ]
    assert health_violations(samples) == ["a process 1: /health no answer"]


def test_a_killed_process_is_not_judged_on_its_silence() -> None:
    samples = _life([(200, 1.0)])
    samples.append(Sample(0.5, "a", 1, False, 0, None, 0, None))
    assert ready_violations(samples, []) == []
    assert health_violations(samples) == []
