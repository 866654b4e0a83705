"""The worker's health judgements (pure): readiness reasons, lag, when /health fails."""

from __future__ import annotations

from streams.worker_health import HELD_REASONS, LAG_FRESH_S, STALLED_AFTER_S, WorkerHealth

TP = ("t-activity", 0)


def _healthy() -> WorkerHealth:
    health = WorkerHealth(mirror="ok", started_at=0.0, excused_at=0.0)
    health.assign({TP: 10})
    return health


def test_a_fresh_worker_waits_for_its_mirror_check_then_has_no_problem() -> None:
    health = WorkerHealth()
    assert health.problems() == ["redis mirror check"]
    health.mirror = "ok"
    assert health.problems() == []
    health.mirror = "rebuild"
    assert health.problems() == ["redis mirror rebuild"]


def test_outages_are_reported_once_per_transition_and_named() -> None:
    health = _healthy()
    assert health.broker_failed("KafkaConnectionError: refused") is True
    assert health.broker_failed("KafkaConnectionError: refused") is False
    assert health.redis_failed("ConnectionError: refused") is True
    assert health.problems() == [
        "broker unreachable: KafkaConnectionError: refused",
        "redis unreachable: ConnectionError: refused",
    ]
    assert health.broker_answered() is True
    assert health.broker_answered() is False
    # Redis may have come back empty: the mirror is unchecked until its markers are read.
    assert health.redis_answered() is True
    assert health.problems() == ["redis mirror check"]


def test_held_input_is_a_reason_only_with_partitions_assigned() -> None:
    health = _healthy()
    health.hold("deployment", "the models of deployment revision 2")
    assert health.problems() == ["input held (1 partitions): the models of deployment revision 2"]
    health.release()
    assert health.problems() == []
    health.assign({})
    health.hold("rebalance", "rebalance")
    assert health.problems() == []


def test_held_reasons_name_the_hold_and_every_outage_from_a_fixed_set() -> None:
    health = _healthy()
    assert set(health.held_reasons()) == set(HELD_REASONS)
    assert not any(health.held_reasons().values())
    health.hold("deployment", "the models of deployment revision 2")
    health.redis_failed("ConnectionError: refused")
    held = {reason for reason, on in health.held_reasons().items() if on}
    assert held == {"deployment", "redis_outage"}
    health.release()
    health.redis_answered()
    health.broker_failed("no answer within 4s")
    assert {reason for reason, on in health.held_reasons().items() if on} == {"broker_outage"}
    health.broker_answered()
    health.assign({})
    health.hold("table_recovery", "table recovery")  # nothing assigned: nothing is held
    assert not any(health.held_reasons().values())


def test_lag_is_end_minus_next_and_never_negative() -> None:
    health = _healthy()
    other = ("t-billing", 0)
    health.assign({TP: 10, other: 50})
    health.probed({TP: 25, other: 40})  # Tansu may report an end below what was read
    assert health.lags() == {TP: 15, other: 0}
    health.advance({TP: 20, ("t-activity", 9): 5}, batch=True)  # not assigned: ignored
    assert health.lags() == {TP: 5, other: 0}
    assert health.last_batch_at is not None


def test_a_quiet_worker_is_never_stalled() -> None:
    health = _healthy()
    health.probed({TP: 10})  # nothing waits
    now = health.lag_at or 0.0
    assert health.stalled(now + 10 * STALLED_AFTER_S) is None  # the figure went stale
    health.lag_at = now + 10 * STALLED_AFTER_S
    assert health.stalled(health.lag_at) is None


def test_waiting_input_with_no_batch_for_long_is_stalled_unless_excused() -> None:
    health = _healthy()
    health.end_offsets, health.lag_at = {TP: 30}, 500.0
    health.last_batch_at = 100.0
    assert health.stalled(500.0) == "no batch for 400s while 20 input records wait"
    assert health.stalled(500.0 + LAG_FRESH_S + 1) is None  # stale lag says nothing
    health.last_batch_at = 450.0
    assert health.stalled(500.0) is None
    health.last_batch_at = 100.0
    health.broker_error = "timeout"
    assert health.stalled(500.0) is None  # readiness explains it
    health.broker_error = None
    health.held = "rebalance"
    assert health.stalled(500.0) is None
    health.held = None
    health.excused_at = 490.0  # an outage or a hold just ended: the clock starts again
    assert health.stalled(500.0) is None
