"""The control fold: authentication, authorisation, replay and revision checks, transitions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from models_store.control.audit_records import command_record
from models_store.control.commands import Role, seed_record
from models_store.control.fold import ControlFold, ControlRecord
from models_store.control.rejections import Rejection
from models_store.control.signing import Keyring, Principal, issue, new_key, sign
from models_store.control.state import Deployment

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
V1, V2, V3 = "profitability@1.0.0", "profitability@2.0.0", "profitability@3.0.0"
ADMIN = Principal("alice", Role.ADMIN, bytes.fromhex(new_key()))
OPERATOR = Principal("otto", Role.OPERATOR, bytes.fromhex(new_key()))
VIEWER = Principal("vera", Role.VIEWER, bytes.fromhex(new_key()))
KEYRING = Keyring({p.name: p for p in (ADMIN, OPERATOR, VIEWER)})


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Log:
    """A control log being folded: append documents (or raw bytes), get outcomes."""

    def __init__(self, champion: str | None = V1) -> None:
        self.fold = ControlFold(KEYRING)
        self.offset = 0
        if champion is not None:
            accepted(self.raw(seed_record(champion, "worker-1", NOW, "seed-0001")))

    def raw(self, value: bytes, at: datetime = NOW) -> Any:
        outcome = self.fold.apply(ControlRecord(self.offset, value, int(at.timestamp() * 1000)))
        self.offset += 1
        return outcome

    def send(self, document: dict[str, Any], at: datetime = NOW) -> Any:
        return self.raw(json.dumps(document).encode(), at)

    def command(self, kind: str, by: Principal = ADMIN, **args: Any) -> Any:
        return self.send(
            issue(kind, args, by, issued_at=NOW, expected_revision=self.fold.state.revision)
        )


def accepted(outcome: Any) -> Any:
    assert outcome.accepted, outcome.message
    return outcome


def rejected(outcome: Any, reason: Rejection) -> Any:
    assert (outcome.accepted, outcome.reason) == (False, reason), outcome.message
    assert outcome.before == outcome.after
    return outcome


def test_deploy_and_rollback_move_the_champion_and_the_deployment_revision() -> None:
    log = Log()
    accepted(log.command("register", model=V2))
    assert log.fold.state.deployment.revision == 1  # registering changes nothing that scores
    deployed = accepted(log.command("deploy", model=V2))
    assert deployed.after.deployment.champion == V2
    assert deployed.after.deployment.revision == deployed.after.revision == 3
    back = accepted(log.command("rollback"))
    assert back.after.deployment.champion == V1
    assert back.after.deployment.revision == 4
    rejected(log.command("rollback"), Rejection.INVALID)  # nothing before v1
    rejected(log.command("deploy", model=V3), Rejection.INVALID)  # not registered
    accepted(log.command("register", model=V3))
    accepted(log.command("retire", model=V2))
    rejected(log.command("deploy", model=V2), Rejection.INVALID)
    rejected(log.command("retire", model=V1), Rejection.INVALID)  # the champion


def test_every_rejection_kind_leaves_the_state_alone() -> None:
    log = Log()
    accepted(log.command("register", model=V2))
    good = issue("deploy", {"model": V2}, ADMIN, issued_at=NOW, expected_revision=2)
    rejected(log.raw(b"\xff not json"), Rejection.MALFORMED)
    rejected(log.raw(b"[1, 2]"), Rejection.MALFORMED)
    rejected(log.send({k: v for k, v in good.items() if k != "signature"}), Rejection.UNSIGNED)
    rejected(log.send({**good, "issued_by": "mallory"}), Rejection.UNKNOWN_PRINCIPAL)
    rejected(log.send({**good, "args": {"model": V1}}), Rejection.BAD_SIGNATURE)
    forged = sign({**good, "args": {"model": V2}}, bytes.fromhex(new_key()))
    rejected(log.send(forged), Rejection.BAD_SIGNATURE)
    bad_args = sign({**good, "args": {"model": "v2"}}, ADMIN.key)
    rejected(log.send(bad_args), Rejection.MALFORMED)
    rejected(log.send(good, at=NOW + timedelta(minutes=6)), Rejection.EXPIRED)
    rejected(log.send(good, at=NOW - timedelta(minutes=2)), Rejection.EXPIRED)
    as_operator = issue("deploy", {"model": V2}, OPERATOR, issued_at=NOW, expected_revision=2)
    rejected(log.send(as_operator), Rejection.FORBIDDEN)
    stale = issue("deploy", {"model": V2}, ADMIN, issued_at=NOW, expected_revision=1)
    rejected(log.send(stale), Rejection.STALE)
    accepted(log.send(good))
    again = rejected(log.send(good), Rejection.REPLAYED)
    assert "already processed" in again.message
    same_nonce = sign({**good, "command_id": "another-id-1234"}, ADMIN.key)
    rejected(log.send(same_nonce), Rejection.REPLAYED)
    assert log.fold.state.deployment.champion == V2
    assert log.fold.state.revision == 3


def test_viewers_may_not_issue_anything_and_operators_not_deploy() -> None:
    log = Log()
    rejected(log.command("register", by=VIEWER, model=V2), Rejection.FORBIDDEN)
    accepted(log.command("register", by=OPERATOR, model=V2))
    rejected(log.command("rollback", by=OPERATOR), Rejection.FORBIDDEN)
    rejected(log.command("erase_client", by=OPERATOR, client_id="c-1"), Rejection.FORBIDDEN)


def test_experiments_start_ramp_through_the_schedule_and_promote() -> None:
    log = Log()
    accepted(log.command("register", model=V2))
    started = accepted(
        log.command(
            "experiment_start",
            by=OPERATOR,
            experiment_id="e1",
            challenger=V2,
            salt="s",
            schedule=[0.05, 0.25, 1.0],
        )
    )
    experiment = started.after.deployment.experiment
    assert experiment.share == 0.05
    assert experiment.started_at == NOW.timestamp()
    rejected(log.command("deploy", model=V2), Rejection.INVALID)  # experiment running
    assert (
        accepted(
            log.command("experiment_ramp", by=OPERATOR, experiment_id="e1")
        ).after.deployment.experiment.share
        == 0.25
    )
    assert (
        accepted(
            log.command("experiment_ramp", by=OPERATOR, experiment_id="e1")
        ).after.deployment.experiment.share
        == 1.0
    )
    rejected(log.command("experiment_ramp", by=OPERATOR, experiment_id="e1"), Rejection.INVALID)
    rejected(
        log.command("experiment_promote", by=OPERATOR, experiment_id="e1"), Rejection.FORBIDDEN
    )
    promoted = accepted(log.command("experiment_promote", experiment_id="e1"))
    assert promoted.after.deployment.champion == V2
    assert promoted.after.deployment.experiment is None
    assert promoted.after.previous == (V1,)
    rejected(
        log.command("experiment_start", by=OPERATOR, experiment_id="e1", challenger=V1, salt="s"),
        Rejection.INVALID,
    )  # the id was used before


def test_shadow_experiments_have_no_split() -> None:
    log = Log()
    accepted(log.command("register", model=V2))
    started = accepted(
        log.command(
            "experiment_start",
            by=OPERATOR,
            experiment_id="sh",
            challenger=V2,
            salt="s",
            mode="shadow",
            share=0.5,
        )
    )
    assert started.after.deployment.experiment.share == 0.0
    rejected(
        log.command("experiment_ramp", by=OPERATOR, experiment_id="sh", share=0.5),
        Rejection.INVALID,
    )
    stopped = accepted(log.command("experiment_stop", by=OPERATOR, experiment_id="sh"))
    assert stopped.after.deployment.experiment is None
    assert stopped.after.deployment.champion == V1


def test_erasure_is_recorded_and_audited_by_digest_only() -> None:
    log = Log()
    erased = accepted(log.command("erase_client", client_id="client-42"))
    assert "client-42" in erased.after.erased
    record = command_record(erased).to_json().decode()
    assert "client-42" not in record
    assert "client_sha256" in record
    rejected(log.command("erase_client", client_id="client-42"), Rejection.INVALID)


def test_two_folds_of_the_same_log_agree_whenever_they_run() -> None:
    log = Log()
    values = [
        json.dumps(issue("register", {"model": V2}, OPERATOR, issued_at=NOW)).encode(),
        json.dumps(issue("deploy", {"model": V2}, ADMIN, issued_at=NOW)).encode(),
        b"garbage",
        json.dumps(issue("rollback", {}, ADMIN, issued_at=NOW)).encode(),
    ]
    outcomes = [log.raw(value, at=NOW + timedelta(seconds=i)) for i, value in enumerate(values)]
    later = ControlFold(KEYRING)
    later.apply(ControlRecord(0, seed_record(V1, "worker-1", NOW, "seed-0001"), _ms(NOW)))
    replayed = [
        later.apply(ControlRecord(i + 1, value, _ms(NOW + timedelta(seconds=i))))
        for i, value in enumerate(values)
    ]
    assert [command_record(o) for o in outcomes] == [command_record(o) for o in replayed]
    assert later.state == log.fold.state


def test_a_fold_without_a_configured_champion_needs_a_deploy() -> None:
    log = Log(champion=None)
    rejected(log.command("rollback"), Rejection.INVALID)
    accepted(log.command("register", model=V1))
    accepted(log.command("deploy", model=V1))
    assert log.fold.state.deployment.champion == V1


@pytest.mark.parametrize("document", [{"principals": []}, {"principals": {"a": {"role": "x"}}}])
def test_bad_keyrings_are_refused(document: dict[str, Any], tmp_path: Any) -> None:
    from models_store.control.signing import KeyringError, parse_keyring

    with pytest.raises(KeyringError):
        parse_keyring(document, tmp_path)


def test_the_first_seed_starts_an_empty_log_and_later_seeds_change_nothing() -> None:
    log = Log(champion=None)
    first = accepted(log.raw(seed_record(V2, "worker-a", NOW, "seed-a-0001")))
    assert first.after.deployment == Deployment(1, V2, None)
    assert command_record(first).issued_by == "worker-a"
    # A second worker configured with another model (or the same one) changes nothing.
    for model in (V1, V2):
        late = rejected(log.raw(seed_record(model, "worker-b", NOW, "seed-b-0001")),
                        Rejection.INVALID)  # fmt: skip
        assert "already deploys" in late.message
    accepted(log.command("register", model=V3))
    accepted(log.command("deploy", model=V3))
    rejected(log.raw(seed_record(V1, "worker-c", NOW, "seed-c-0001")), Rejection.INVALID)
    assert log.fold.state.deployment.champion == V3


def test_a_seed_is_checked_like_a_command() -> None:
    log = Log(champion=None)
    rejected(log.raw(b'{"type": "seed", "args": {"model": "v1"}}'), Rejection.MALFORMED)
    stale = seed_record(V1, "worker-a", NOW - timedelta(hours=1), "seed-a-0001")
    rejected(log.raw(stale), Rejection.EXPIRED)
    accepted(log.command("register", model=V2))
    accepted(log.command("retire", model=V2))
    rejected(log.raw(seed_record(V2, "worker-a", NOW, "seed-a-0002")), Rejection.INVALID)
    assert log.fold.state.deployment.champion is None
