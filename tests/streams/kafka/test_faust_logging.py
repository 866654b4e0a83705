"""Faust's livelock reports about the paused input partitions are dropped, nothing else is."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any, cast

import pytest
from faust.transport.drivers import aiokafka as driver
from faust.types import TP
from mode.utils.logging import CompositeLogger

from streams.kafka.faust_logging import PausedInputReports, quiet_paused_inputs

INPUTS = ("client-activity", "billing")


@pytest.fixture
def faust_log() -> Iterator[CompositeLogger]:
    """The logger Faust's consumer thread writes its reports to, as Faust wraps it."""
    logger = logging.getLogger(driver.__name__)
    quiet_paused_inputs(INPUTS)
    quiet_paused_inputs(INPUTS)  # installed again (a second app): still one filter
    assert len([f for f in logger.filters if isinstance(f, PausedInputReports)]) == 1
    try:
        yield CompositeLogger(logger, formatter=lambda _s, message, *_a, **_k:
                              f"[^---AIOKafkaConsumerThread]: {message}")  # fmt: skip
    finally:
        for installed in [f for f in logger.filters if isinstance(f, PausedInputReports)]:
            logger.removeFilter(installed)


def _report(template: str, setting: str) -> str:
    # Faust's own text: the template, then the explanation of the setting and the causes.
    thread = cast(Any, driver.AIOKafkaConsumerThread)
    text: str = thread._make_slow_processing_error(None, template, ["a cause"], setting, 300.0)
    return text


@pytest.mark.parametrize(
    ("template", "topic", "kept"),
    [
        (driver.SLOW_PROCESSING_STREAM_IDLE_SINCE_START, "billing", False),
        (driver.SLOW_PROCESSING_STREAM_IDLE, "client-activity", False),
        (driver.SLOW_PROCESSING_NO_COMMIT_SINCE_START, "billing", False),
        (driver.SLOW_PROCESSING_NO_RECENT_COMMIT, "billing", False),
        # The control topic's audit agent does process its stream: a report there matters.
        (driver.SLOW_PROCESSING_STREAM_IDLE_SINCE_START, "profitability-control", True),
        # So does a broker that stops answering, on any topic.
        (driver.SLOW_PROCESSING_NO_RECENT_FETCH, "billing", True),
        (driver.SLOW_PROCESSING_NO_FETCH_SINCE_START, "billing", True),
    ],
)
def test_only_stream_reports_on_input_partitions_are_dropped(
    faust_log: CompositeLogger, caplog: pytest.LogCaptureFixture,
    template: str, topic: str, kept: bool,
) -> None:  # fmt: skip
    with caplog.at_level(logging.ERROR, logger=driver.__name__):
        faust_log.error(_report(template, "stream_processing_timeout"), TP(topic, 3), "5 min")
    assert [r.getMessage().startswith("[^---") for r in caplog.records] == ([True] * kept)


def test_other_records_pass(faust_log: CompositeLogger, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=driver.__name__):
        faust_log.info("Stream has not started processing, said no TP")
        faust_log.error("Stream has not started processing %(what)s", {"what": "billing"})
        faust_log.error("Got exception: %r for %r", ValueError("x"), TP("billing", 1))
    assert len(caplog.records) == 3


def test_a_malformed_request_is_one_warning_without_a_traceback() -> None:
    from aiohttp.http_exceptions import BadStatusLine

    from streams.kafka.faust_logging import MalformedRequests

    try:
        raise BadStatusLine("GARBAGE")
    except BadStatusLine:
        record = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1,
                                   "Error handling request from %s", ("127.0.0.1",),
                                   sys.exc_info())  # fmt: skip
    assert MalformedRequests().filter(record)
    assert (record.levelno, record.levelname, record.exc_info) == (logging.WARNING, "WARNING", None)
    assert record.getMessage().startswith("malformed HTTP request refused with 400")
    unrelated = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, "boom", (), None)
    assert MalformedRequests().filter(unrelated)
    assert unrelated.levelno == logging.ERROR
