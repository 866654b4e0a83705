"""The product's topics, declared on the Faust app with the configured names."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TopicT

from streams.settings import Settings


@dataclass(frozen=True)
class Topics:
    """Every topic of DESIGN.md; values stay raw bytes so the DLQ can forward them unchanged."""

    activity: TopicT
    billing: TopicT
    predictions: TopicT
    shadow: TopicT
    control: TopicT
    audit: TopicT
    monitoring: TopicT
    dlq: TopicT

    def all(self) -> tuple[TopicT, ...]:
        """Every topic, inputs and outputs."""
        return (
            self.activity,
            self.billing,
            self.predictions,
            self.shadow,
            self.control,
            self.audit,
            self.monitoring,
            self.dlq,
        )


def declare_topics(app: faust.App, settings: Settings) -> Topics:
    """Declare the topics on ``app`` and create the missing ones when the worker starts.

    Faust itself only creates the internal topics it subscribes to; a broker without
    auto-creation (the production default) would leave the output topics missing and
    the first send would hang waiting for their metadata.
    """
    names = settings.topics

    def topic(name: str, partitions: int | None = None) -> TopicT:
        return app.topic(
            name,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions or settings.topic_partitions,
            internal=True,
        )

    topics = Topics(
        activity=topic(names.activity),
        billing=topic(names.billing),
        predictions=topic(names.predictions),
        shadow=topic(names.shadow),
        # One partition: every worker must fold the control commands in one order.
        control=topic(names.control, partitions=1),
        audit=topic(names.audit, partitions=1),
        monitoring=topic(names.monitoring),
        dlq=topic(names.dlq),
    )

    async def create_missing_topics() -> None:
        for declared in topics.all():
            await declared.maybe_declare()

    app.task(create_missing_topics)

    return topics
