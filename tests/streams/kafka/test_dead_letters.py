"""DLQ headers (pure, no services)."""

from __future__ import annotations

from streams.kafka.dead_letters import dead_letter_headers
from streams.kafka.records import SourceRecord


def _message(headers: list[tuple[str, bytes]] | None = None) -> SourceRecord:
    return SourceRecord(
        topic="client-activity", partition=3, offset=42, key=None, value=b"{}",
        headers=headers or [],
    )  # fmt: skip


def test_headers_name_source_and_error_and_keep_original_headers() -> None:
    headers = dict(dead_letter_headers(_message([("trace", b"abc")]), "bad thing"))
    assert headers == {
        "trace": b"abc",
        "profitstream.source.topic": b"client-activity",
        "profitstream.source.partition": b"3",
        "profitstream.source.offset": b"42",
        "profitstream.error.reason": b"invalid",
        "profitstream.error": b"bad thing",
    }


def test_error_header_is_bounded() -> None:
    headers = dict(dead_letter_headers(_message(), "x" * 5000))
    assert len(headers["profitstream.error"]) == 1024
