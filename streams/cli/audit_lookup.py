"""Which model version scored client X at time T, answered from the audit trail alone.

The trail holds every accepted command and every ``model_switch`` record: which input
partition moved to which deployment, from which offset, at what time. A client's events
are keyed by its id, so the producers' default partitioner (murmur2, as Kafka's and
aiokafka's) puts them in one partition number of each input topic; the latest switch of
that partition at or before T names the deployment, and the experiment's salt and share
name the client's arm (``models_store.experiments.assignment``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from models_store.control.state import client_digest
from models_store.experiments.assignment import assign_arm
from streams.kafka.key_partitions import client_partition


@dataclass(frozen=True)
class ScoredBy:
    """What the trail says about one client at one time (``model`` None: not scored)."""

    client_id: str
    at: datetime
    partition: int
    model: str | None = None
    arm: str | None = None
    experiment_id: str | None = None
    deployment_revision: int | None = None
    since: str | None = None  # when the partition switched to that deployment
    worker: str | None = None
    erased_at: str | None = None
    deployed: bool = False  # a switch had reached the partition by ``at``

    def document(self) -> dict[str, Any]:
        """The answer as JSON-ready fields."""
        return {**asdict(self), "at": self.at.isoformat()}

    def sentence(self) -> str:
        """The answer as one sentence."""
        client, at = self.client_id, self.at.isoformat()
        if self.erased_at is not None:
            return f"client {client} was erased at {self.erased_at}: not scored"
        if not self.deployed:
            return (
                f"no deployment had reached partition {self.partition} (client {client}) by "
                f"{at}: nothing scored it"
            )
        when = f"at {at}, client {client} (partition {self.partition})"
        if self.model is None:
            return f"{when} was not scored: no model was deployed"
        detail = f"deployment revision {self.deployment_revision}, since {self.since}"
        if self.arm is not None:
            detail += f"; experiment {self.experiment_id}, arm {self.arm}"
        return f"{when} was scored by {self.model} ({detail}, worker {self.worker})"


def scored_by(
    records: list[dict[str, Any]], client_id: str, at: datetime, partitions: int
) -> ScoredBy:
    """The model (and arm) that scored ``client_id`` at ``at`` (an aware time)."""
    partition = client_partition(client_id, partitions)
    asked = ScoredBy(client_id, at, partition)
    erased = _erased_at(records, client_id, at)
    if erased is not None:
        return ScoredBy(client_id, at, partition, erased_at=erased)
    switches = [
        record for record in records
        if record.get("kind") == "model_switch"
        and datetime.fromisoformat(record["at"]) <= at
        and any(p["partition"] == partition for p in record["partitions"])
    ]  # fmt: skip
    if not switches:
        return asked
    switch = max(switches, key=lambda record: datetime.fromisoformat(record["at"]))
    champion = switch["champion"]
    experiment = switch.get("experiment")
    model, arm, experiment_id = champion, None, None
    if champion is not None and experiment and experiment["mode"] == "ab":
        arm = assign_arm(client_id, experiment["salt"], experiment["share"])
        model = experiment["challenger"] if arm == "challenger" else champion
        experiment_id = experiment["id"]
    return ScoredBy(
        client_id, at, partition, model, arm, experiment_id,
        switch["deployment_revision"], switch["at"], switch["worker"], deployed=True,
    )  # fmt: skip


def model_at(records: list[dict[str, Any]], client_id: str, at: datetime, partitions: int) -> str:
    """One sentence: the model (and arm) that scored ``client_id`` at ``at``."""
    return scored_by(records, client_id, at, partitions).sentence()


def _erased_at(records: list[dict[str, Any]], client_id: str, at: datetime) -> str | None:
    """When the client's erasure was accepted, if it was by ``at``."""
    digest = client_digest(client_id)
    for record in records:
        if (
            record.get("kind") == "command"
            and record.get("type") == "erase_client"
            and record.get("outcome") == "accepted"
            and record.get("args", {}).get("client_sha256") == digest
            and datetime.fromisoformat(record["record_time"]) <= at
        ):
            return str(record["record_time"])
    return None
