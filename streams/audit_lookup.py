"""Which model version scored client X at time T, answered from the audit trail alone.

The trail holds every accepted command and every ``model_switch`` record: which input
partition moved to which deployment, from which offset, at what time. A client's events
are keyed by its id, so the producers' default partitioner (murmur2, as Kafka's and
aiokafka's) puts them in one partition number of each input topic; the latest switch of
that partition at or before T names the deployment, and the experiment's salt and share
name the client's arm (``models_store.assignment``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from models_store.assignment import assign_arm
from models_store.deployment import client_digest
from streams.key_partitions import client_partition


def model_at(records: list[dict[str, Any]], client_id: str, at: datetime, partitions: int) -> str:
    """One sentence: the model (and arm) that scored ``client_id`` at ``at``."""
    digest = client_digest(client_id)
    for record in records:
        if (
            record.get("kind") == "command"
            and record.get("type") == "erase_client"
            and record.get("outcome") == "accepted"
            and record.get("args", {}).get("client_sha256") == digest
            and datetime.fromisoformat(record["record_time"]) <= at
        ):
            return f"client {client_id} was erased at {record['record_time']}: not scored"
    partition = client_partition(client_id, partitions)
    switches = [
        record for record in records
        if record.get("kind") == "model_switch"
        and datetime.fromisoformat(record["at"]) <= at
        and any(p["partition"] == partition for p in record["partitions"])
    ]  # fmt: skip
    if not switches:
        return (
            f"no deployment had reached partition {partition} (client {client_id}) by "
            f"{at.isoformat()}: nothing scored it"
        )
    switch = max(switches, key=lambda record: datetime.fromisoformat(record["at"]))
    champion = switch["champion"]
    experiment = switch.get("experiment")
    when = f"at {at.isoformat()}, client {client_id} (partition {partition})"
    if champion is None:
        return f"{when} was not scored: no model was deployed"
    model, arm = champion, None
    if experiment and experiment["mode"] == "ab":
        arm = assign_arm(client_id, experiment["salt"], experiment["share"])
        model = experiment["challenger"] if arm == "challenger" else champion
    detail = f"deployment revision {switch['deployment_revision']}, since {switch['at']}"
    if arm is not None and experiment:
        detail += f"; experiment {experiment['id']}, arm {arm}"
    return f"{when} was scored by {model} ({detail}, worker {switch['worker']})"
