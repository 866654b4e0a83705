"""Splits (pure, with hypothesis): no fitting label overlaps a judged one, client groups
are disjoint, and a refusal states the span and only options that fit."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from itertools import product

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models_store.errors import TrainingDataError
from models_store.training.splits import (
    ROLES,
    SplitKind,
    SplitPlan,
    SplitRequest,
    client_group,
    client_split,
    plan_split,
    purged_split,
    row_roles,
    time_split,
)

DAY = 86_400.0
START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
_CLIENTS = st.lists(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), min_size=1, max_size=25,
                    unique=True)  # fmt: skip
_COUNTS = st.one_of(st.none(), st.integers(min_value=1, max_value=4))


def _rows(plan: SplitPlan, clients: list[str]) -> pd.DataFrame:
    """Every (client, cutoff) of the plan's cutoffs with its role (None: purged)."""
    pairs = list(product(clients, plan.cutoffs))
    frame = pd.DataFrame(pairs, columns=["client_id", "cutoff"])
    frame["role"] = row_roles(plan, frame["client_id"], frame["cutoff"])
    return frame


def _assert_no_fitting_label_overlaps_a_judged_one(plan: SplitPlan, rows: pd.DataFrame) -> None:
    """The invariant of ``training.splits``: for a fitting role before a judged role, no two
    rows' labels (c, c+H] overlap when the split is by time or the client is the same, and
    the fitting one closes by the judged cutoff."""
    rank = {role: position for position, role in enumerate(ROLES)}
    used = rows[rows["role"].notna()]
    records = list(zip(used["client_id"], used["cutoff"].astype(float), used["role"], strict=True))
    for (fit_client, fit_cutoff, fit_role), (client, cutoff, role) in product(records, records):
        if rank[fit_role] >= rank[role]:
            continue
        if plan.kind == "time" or fit_client == client:
            assert fit_cutoff + plan.horizon_s <= cutoff, (plan, fit_client, fit_cutoff, client)


@settings(max_examples=150, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=30),
    step_days=st.sampled_from([1, 7, 30, 31]),
    horizon_days=st.sampled_from([30, 60, 90, 182]),
    validation=_COUNTS,
    test=_COUNTS,
    clients=_CLIENTS,
)
def test_time_split_no_fitting_label_overlaps_a_judged_label(
    count: int, step_days: int, horizon_days: int, validation: int | None, test: int | None,
    clients: list[str],
) -> None:  # fmt: skip
    cutoffs = [START + (i + 1) * step_days * DAY for i in range(count)]
    plan = time_split(cutoffs, horizon_days * DAY, validation, test)
    if plan is None:
        # Refused only when even one cutoff per role cannot be purged apart.
        assert purged_split(cutoffs, horizon_days * DAY, validation or 1, test or 1) is None
        return
    assert plan.train
    assert plan.validation
    assert plan.test
    assert plan.test == cutoffs[-len(plan.test) :]
    if validation is not None:
        assert len(plan.validation) == validation
    if test is not None:
        assert len(plan.test) == test
    rows = _rows(plan, clients)
    pairs = zip(rows["client_id"], rows["cutoff"], strict=True)
    roles = [None if pd.isna(role) else role for role in rows["role"]]
    assert roles == [plan.role(client, cutoff) for client, cutoff in pairs]
    _assert_no_fitting_label_overlaps_a_judged_one(plan, rows)


@settings(max_examples=150, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=12),
    step_days=st.sampled_from([1, 7, 30]),
    horizon_days=st.sampled_from([30, 90, 182]),
    validation=_COUNTS,
    test=_COUNTS,
    clients=_CLIENTS,
)
def test_client_split_groups_are_disjoint_and_each_clients_past_is_purged(
    count: int, step_days: int, horizon_days: int, validation: int | None, test: int | None,
    clients: list[str],
) -> None:  # fmt: skip
    cutoffs = [START + (i + 1) * step_days * DAY for i in range(count)]
    plan = client_split(cutoffs, horizon_days * DAY, validation, test)
    if plan is None:
        assert max(validation or 1, test or 1) > count
        return
    rows = _rows(plan, clients)
    pairs = zip(rows["client_id"], rows["cutoff"], strict=True)
    roles = [None if pd.isna(role) else role for role in rows["role"]]
    assert roles == [plan.role(client, cutoff) for client, cutoff in pairs]
    judged = {role: set(rows.loc[rows["role"] == role, "client_id"]) for role in ROLES}
    assert not judged["validation"] & judged["test"]  # no client judged in two groups
    for client in clients:
        own = set(rows.loc[rows["client_id"] == client, "role"].dropna())
        group = client_group(client)
        assert own <= {"train", group}  # a client has its group's role, or trains
        if group != "train":
            assert group in own  # the group's judged cutoffs have its rows
    _assert_no_fitting_label_overlaps_a_judged_one(plan, rows)


def test_client_groups_are_a_stable_hash_in_the_stated_shares() -> None:
    groups = pd.Series([client_group(f"client-{i:05d}") for i in range(20_000)])
    shares = groups.value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.6, abs=0.015)
    assert shares["validation"] == pytest.approx(0.2, abs=0.015)
    assert shares["test"] == pytest.approx(0.2, abs=0.015)
    assert client_group("client-00042") == client_group("client-00042")


def test_fewer_cutoffs_are_chosen_when_the_history_is_short() -> None:
    # 12 months of 30-day periods, a 90-day horizon: 30d cutoffs on days 30 to 270.
    cutoffs = [START + d * DAY for d in range(30, 271, 30)]
    plan = time_split(cutoffs, 90 * DAY, None, None)
    assert plan is not None
    assert (len(plan.train), len(plan.validation), len(plan.test)) == (3, 1, 1)
    assert purged_split(cutoffs, 90 * DAY, 3, 3) is None  # the old defaults: refused
    # 24 months: three of each, as before.
    longer = [START + d * DAY for d in range(30, 631, 30)]
    plan = time_split(longer, 90 * DAY, None, None)
    assert plan is not None
    assert (len(plan.validation), len(plan.test)) == (3, 3)


def _offered(message: str) -> list[str]:
    return [part.split(" (")[0] for part in message.split("options that fit: ")[1].split(", ")]


def _apply(option: str, request: SplitRequest) -> SplitRequest:
    """``request`` changed as a user would by passing ``option``."""
    if option == "a longer history":
        return request
    words = option.split()
    changes: dict[str, object] = {}
    for flag, value in zip(words[::2], words[1::2], strict=True):
        if flag == "--horizon":
            changes["horizon_s"] = int(value.removesuffix("d")) * DAY
        elif flag == "--split":
            changes["kind"] = value
        elif flag == "--cutoffs":
            changes["spec"] = value
        else:
            changes[flag.removeprefix("--").removesuffix("-cutoffs")] = int(value)
    return SplitRequest(**{**request.__dict__, **changes})


@settings(max_examples=60, deadline=None)
@given(
    span_days=st.integers(min_value=20, max_value=700),
    horizon_days=st.sampled_from([30, 90, 182, 365]),
    spec=st.sampled_from(["30d", "monthly", "7d"]),
    kind=st.sampled_from(["auto", "time", "clients"]),
    counts=st.sampled_from([(None, None), (3, 3), (2, 1)]),
)
def test_a_refusal_states_the_span_needed_and_only_options_that_fit(
    span_days: int, horizon_days: int, spec: str, kind: str, counts: tuple[int | None, ...]
) -> None:
    request = SplitRequest(spec, horizon_days * DAY, kind, *counts)  # type: ignore[arg-type]
    end = START + span_days * DAY
    try:
        plan_split(request, START, end)
    except TrainingDataError as exc:
        message = str(exc)
    else:
        return
    assert f"the history spans {span_days} days (2024-01-01 to " in message
    for named, days in re.findall(r"a (time|client) split needs ([0-9]+) days", message):
        need = int(days)
        split: SplitKind = "time" if named == "time" else "clients"
        assert need > span_days  # and exactly the shortest span that fits:
        assert request.fits(split, START, START + need * DAY)
        assert not request.fits(split, START, START + (need - 1) * DAY)
    options = _offered(message)
    assert options[-1] == "a longer history"
    for option in options[:-1]:
        plan_split(_apply(option, request), START, end)  # each offered option fits


def test_nine_months_with_a_half_year_horizon_is_split_by_client() -> None:
    """Issue 16: 273 days and a 182-day horizon. A time split needs the first cutoff (day
    30) and three horizons, each starting on a cutoff (days 30, 240, 450, + 182 = 632);
    the automatic choice is the client split, and `--split time` says what would fit."""
    end = START + 273 * DAY
    plan = plan_split(SplitRequest("30d", 182 * DAY), START, end)
    assert plan.kind == "clients"
    assert "too short for a time split with a 182-day horizon (it needs 632 days)" in plan.reason
    with pytest.raises(TrainingDataError) as refused:
        plan_split(SplitRequest("30d", 182 * DAY, "time", 1, 1), START, end)
    message = str(refused.value)
    assert message.startswith("the history spans 273 days (2024-01-01 to 2024-09-30), too "
                              "short for a 182-day horizon with --cutoffs 30d: a time split "
                              "needs 632 days")  # fmt: skip
    # 30 + 3 × 63 = 219, but cutoffs fall every 30 days: days 30, 120 (≥ 93), 210 (≥ 183).
    assert message.endswith("options that fit: --horizon 63d, --split clients, a longer history")
    for option in ("--horizon 63d", "--split clients"):
        plan_split(_apply(option, SplitRequest("30d", 182 * DAY, "time", 1, 1)), START, end)
    with pytest.raises(TrainingDataError, match="a time split needs 274 days"):
        plan_split(SplitRequest("30d", 64 * DAY, "time", 1, 1), START, end)
