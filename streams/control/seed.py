"""``PROFITSTREAM_MODEL`` as a seed of the control log: the log alone says what is deployed.

A worker configured with a model writes it to the control topic as a ``seed`` record
(``models_store.control.commands.Seed``) once its fold has caught up, but only when the log never
deployed a champion. Every worker folds the same records, so the first seed in the log is
the first champion everywhere, whatever each worker's configuration says; a worker whose
``PROFITSTREAM_MODEL`` differs from what the log deploys says so once and follows the log.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from faust.types import TopicT

from models_store.control.commands import seed_record
from models_store.registry.base import parse_ref
from streams.control.log import ControlLog

log = logging.getLogger(__name__)


class ControlSeed:
    """Seeds an empty control log with the worker's configured model (an exact reference)."""

    def __init__(self, control: ControlLog, topic: TopicT, model: str, worker_id: str) -> None:
        self._control = control
        self._topic = topic
        self._model = model
        self._worker_id = worker_id

    async def run(self) -> None:
        """Write the seed if the folded log never deployed a champion; wait until it is folded."""
        await self._control.caught_up.wait()
        state = self._control.state
        if state.deployment.champion is None and not state.previous:
            value = seed_record(self._model, self._worker_id, datetime.now(UTC),
                                f"seed-{uuid.uuid4().hex}")  # fmt: skip
            name = parse_ref(self._model).name
            metadata = await (await self._topic.send(key=name.encode(), value=value))
            outcome = await self._control.outcome(metadata.offset)
            if outcome.accepted:
                log.info("the control log had no champion: seeded it with %s", self._model)
            else:
                log.info("seed not applied (%s)", outcome.message)
        deployed = self._control.state.deployment.champion
        if deployed != self._model:
            log.warning(
                "PROFITSTREAM_MODEL=%s is not what the control log deploys (%s, deployment "
                "revision %d): the control log decides; PROFITSTREAM_MODEL only seeds an empty "
                "log (switch with `profitstream models deploy`)",
                self._model, deployed, self._control.state.deployment.revision,
            )  # fmt: skip
