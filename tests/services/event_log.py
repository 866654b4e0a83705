"""Event logs for integration tests: simulated, produced to a worker's topics, rebuilt offline."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from features.offline import LoggedMessage, parsed_events, replay
from features.simulation.messages import SimulatedMessage, simulated_messages
from features.simulation.portfolio import simulate
from features.state import ApplyResult, ClientState
from streams.stack.processes import wait_until
from tests.services.kafka_clients import produce
from tests.services.worker_process import WorkerProcess

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class ReplayedLog:
    """A log that was produced to a worker, and what the offline builder makes of it."""

    messages: list[SimulatedMessage]
    states: dict[str, ClientState]
    outcomes: dict[ApplyResult, int]

    @property
    def last_event_time(self) -> float:
        """The latest event time any client's state holds."""
        return max(s.watermark for s in self.states.values() if s.watermark is not None)


def simulated_log(
    clients: int, months: int, *, malformed: float, duplicate: float, late: float, seed: int = 11
) -> list[SimulatedMessage]:
    """A seeded portfolio's messages in arrival order, bad input injected."""
    portfolio = simulate(clients, months, seed=seed, start=START)
    return simulated_messages(portfolio, malformed=malformed, duplicate=duplicate, late=late)


def produce_log(bootstrap: str, unique: str, messages: list[SimulatedMessage]) -> None:
    """Produce each message to the worker's topic of its stream, keyed by client, in order."""
    for stream in ("activity", "billing"):
        produce(
            bootstrap,
            f"{unique}-{stream}",
            [(m.key, m.value) for m in messages if m.stream == stream],
        )


def rebuild(messages: list[SimulatedMessage]) -> ReplayedLog:
    """The offline builder's client states (as of the end) for the same messages."""
    logged = [LoggedMessage(m.stream, m.key, m.value) for m in messages]  # type: ignore[arg-type]
    states, outcomes = replay(parsed_events(logged), as_of=float("inf"))
    return ReplayedLog(messages, states, outcomes)


def metric(worker: WorkerProcess, name: str) -> dict[str, float]:
    """One Prometheus metric of the worker, as {label text: value}."""
    _, body = worker.get("/metrics")
    values: dict[str, float] = {}
    for line in body.decode().splitlines():
        match = re.match(rf"^{name}(\{{.*\}})? (\S+)$", line)
        if match:
            values[match.group(1) or ""] = float(match.group(2))
    return values


def wait_until_consumed(worker: WorkerProcess, count: int, timeout_s: float = 300) -> None:
    """Wait until the worker has processed ``count`` messages (whole batches, Redis included)."""
    started = time.monotonic()
    wait_until(
        lambda: sum(metric(worker, "profitstream_batch_events_sum").values()) >= count,
        timeout_s=timeout_s,
        what=f"the worker to process {count} messages",
    )
    print(f"processed {count} messages in {time.monotonic() - started:.1f}s")


def client_features(worker: WorkerProcess, client_id: str, as_of: float) -> dict[str, object]:
    """``GET /clients/{id}/features?as_of=...`` as JSON."""
    status, body = worker.get(f"/clients/{client_id}/features?as_of={as_of!r}")
    assert status == 200, (client_id, status, body[:300])
    result: dict[str, object] = json.loads(body)
    return result


# Billing events that carry a price, and the payload field holding it.
PRICED_FIELDS = {"invoice_issued": "amount", "payment_received": "amount",
                 "contract_signed": "monthly_recurring_value",
                 "contract_renewed": "monthly_recurring_value"}  # fmt: skip


def repriced(
    messages: list[SimulatedMessage], factor: float, after: float
) -> list[SimulatedMessage]:
    """The messages with every price of an event at or after ``after`` times ``factor``
    (invoices, payments, contract values): a price change the drift monitor must see."""
    changed = []
    for message in messages:
        if message.stream == "billing" and message.event_time >= after:
            event = json.loads(message.value)
            field = PRICED_FIELDS.get(event.get("type"))
            payload = event.get("payload")
            if field and isinstance(payload, dict) and isinstance(payload.get(field), float | int):
                payload[field] = payload[field] * factor
                message = replace(message, value=json.dumps(event).encode())
        changed.append(message)
    return changed
