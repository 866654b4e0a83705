"""Pure pieces of the CLI: the one time parser, console width, CSV event-log bytes, and the
audit lookup's structured answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from streams.cli.audit_lookup import scored_by
from streams.cli.context import PIPE_WIDTH, output_width, parse_instant
from streams.cli.score import message_bytes
from streams.errors import ProfitstreamError

NINE = datetime(2026, 11, 29, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-29T09:00:00+00:00",  # as the audit trail prints it
        "2026-11-29T09:00:00Z",  # as events carry it
        "2026-11-29T10:00:00+01:00",
        "2026-11-29T04:00:00-05:00",
        "2026-11-29 09:00:00Z",
        " 2026-11-29T09:00:00.000+00:00 ",
    ],
)
def test_times_with_an_offset_are_read_as_utc(text: str) -> None:
    parsed = parse_instant(text, "--at")
    assert parsed == NINE
    assert parsed.tzinfo == UTC


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("2026-11-29T09:00:00", "no UTC offset; add one, e.g. 2026-11-29T09:00:00Z"),
        ("2026-11-29", "no UTC offset"),
        ("yesterday", "is not an ISO-8601 time"),
        ("", "is not an ISO-8601 time"),
    ],
)
def test_naive_or_malformed_times_are_one_line_errors(text: str, fragment: str) -> None:
    with pytest.raises(ProfitstreamError) as refused:
        parse_instant(text, "--as-of")
    message = str(refused.value)
    assert message.startswith("--as-of ")
    assert fragment in message
    assert "\n" not in message


def test_a_non_utc_offset_keeps_the_instant() -> None:
    east = datetime(2026, 11, 29, 11, tzinfo=timezone(timedelta(hours=2)))
    assert parse_instant(east.isoformat(), "--at") == NINE


def test_consoles_wrap_only_in_a_terminal() -> None:
    assert output_width(is_terminal=False, columns=None) == PIPE_WIDTH
    assert output_width(is_terminal=False, columns="") == PIPE_WIDTH
    assert output_width(is_terminal=True, columns=None) is None  # the terminal's own
    assert output_width(is_terminal=False, columns="120") == 120  # an explicit choice wins


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (b'{"a": 1}', b'{"a": 1}'),
        ("b'client-1'", b"client-1"),  # pandas' text for bytes
        ('b\'{"event_id": "x"}\'', b'{"event_id": "x"}'),
        ('{"event_id": "x"}', b'{"event_id": "x"}'),  # the message as text
        ("client-é", "client-é".encode()),
        ("b", b"b"),
        ("b'unterminated", b"b'unterminated"),
        (None, None),
        (float("nan"), None),  # an empty CSV cell
    ],
)
def test_event_log_cells_become_the_message_bytes(cell: object, expected: bytes | None) -> None:
    assert message_bytes(cell) == expected


def test_scored_by_answers_in_fields_and_in_a_sentence() -> None:
    switch = {
        "kind": "model_switch", "worker": "w@host:1", "at": "2026-11-29T08:00:00+00:00",
        "deployment_revision": 3, "champion": "m@1.0.0",
        "experiment": {"id": "e", "challenger": "m@2.0.0", "mode": "ab", "share": 1.0,
                       "salt": "s"},
        "partitions": [{"topic": "t", "partition": p, "from_offset": 0,
                        "previous_revision": None} for p in range(4)],
    }  # fmt: skip
    answer = scored_by([switch], "c1", NINE, 4)
    assert (answer.model, answer.arm, answer.experiment_id) == ("m@2.0.0", "challenger", "e")
    assert answer.document()["at"] == "2026-11-29T09:00:00+00:00"
    assert "was scored by m@2.0.0" in answer.sentence()
    before = scored_by([switch], "c1", NINE - timedelta(hours=2), 4)
    assert not before.deployed
    assert before.model is None
    assert "nothing scored it" in before.sentence()
