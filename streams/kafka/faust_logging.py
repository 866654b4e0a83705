"""Log noise that tells an operator nothing, kept out of the ERROR level.

Faust's livelock detector is kept quiet about the input partitions it is not meant to watch.

Every ``commit_interval × 2.5`` seconds Faust's consumer checks that each assigned
partition is fetched, processed by its stream and committed (``verify_event_path`` in
faust/transport/drivers/aiokafka.py), and logs a 15-line ERROR block per partition that
is not, e.g. "Stream has not started processing TP(...)" once ``stream_processing_timeout``
(300 s) has passed. The input partitions stay paused in Faust's consumer on purpose: the
input reader fetches them with a consumer of its own and keeps its own progress
(streams/pipeline/input_reader.py). For them the check always fires — 16 blocks every 7.5 s with 8
partitions per topic, ~1,900 per 15 minutes — and tells an operator nothing.

No setting narrows the check: ``stream_processing_timeout`` and
``broker_commit_livelock_soft_timeout`` apply to every partition, the control topic's
audit agent included, where a stuck stream is worth an ERROR. So a filter on the logger
of that one Faust module drops the stream and commit reports for the input topics only.
Its reports on fetching (the broker not answering) still come through for every topic.

aiohttp logs every malformed HTTP request (bad request line, header, chunking) as an ERROR
with a traceback, though it already answered 400 before any view ran: anyone who can reach
the port could fill the log. Those become one WARNING line without the traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiohttp.http_exceptions import HttpProcessingError
from faust.transport.drivers import aiokafka as faust_aiokafka

# The reports about a partition's stream and commits (not about fetching from the broker).
STREAM_REPORTS = tuple(
    dict.fromkeys(
        template.split("%")[0]
        for template in (
            faust_aiokafka.SLOW_PROCESSING_STREAM_IDLE_SINCE_START,
            faust_aiokafka.SLOW_PROCESSING_STREAM_IDLE,
            faust_aiokafka.SLOW_PROCESSING_NO_COMMIT_SINCE_START,
            faust_aiokafka.SLOW_PROCESSING_NO_RECENT_COMMIT,
        )
    )
)


def is_paused_input_report(record: logging.LogRecord, inputs: frozenset[str]) -> bool:
    """Whether ``record`` is a livelock report about a partition of one of ``inputs``.

    Faust logs them as ``log.error(text, tp, how_long)``: the partition is the first arg.
    """
    args = record.args
    if not isinstance(args, tuple) or not args or not isinstance(record.msg, str):
        return False
    topic = getattr(args[0], "topic", None)
    return topic in inputs and any(report in record.msg for report in STREAM_REPORTS)


class PausedInputReports(logging.Filter):
    """Drops Faust's livelock reports about the (deliberately paused) input partitions."""

    def __init__(self, inputs: Iterable[str]) -> None:
        super().__init__()
        self.inputs = frozenset(inputs)

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but those reports."""
        return not is_paused_input_report(record, self.inputs)


def quiet_paused_inputs(inputs: Iterable[str]) -> None:
    """Install the filter on Faust's aiokafka driver logger (replacing an earlier one)."""
    logger = logging.getLogger(faust_aiokafka.__name__)
    for installed in [f for f in logger.filters if isinstance(f, PausedInputReports)]:
        logger.removeFilter(installed)
    logger.addFilter(PausedInputReports(inputs))


class MalformedRequests(logging.Filter):
    """Turns aiohttp's ERROR-with-traceback about a malformed request into one WARNING."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record; demote the ones about a request aiohttp refused with 400."""
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and record.levelno >= logging.ERROR:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = f"malformed HTTP request refused with {exc.code}: {exc.message}"
            record.args, record.exc_info, record.exc_text = (), None, None
        return True


def quiet_malformed_requests() -> None:
    """Install the filter on aiohttp's server logger (once)."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequests) for f in logger.filters):
        logger.addFilter(MalformedRequests())
