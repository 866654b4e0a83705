"""The product's topics, declared on the Faust app with the configured names."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TopicT

from streams.kafka.topic_admin import product_topics
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
    """Declare the topics on ``app`` as ``streams.kafka.topic_admin`` creates them.

    The worker creates every topic before Faust starts (``run_worker``), and Faust is
    told not to create any; the declarations carry the same partitions, replicas and
    configs all the same, so that nothing in Faust ever sees other settings.
    """
    specs = {spec.name: spec for spec in product_topics(settings)}

    def topic(name: str) -> TopicT:
        spec = specs[name]
        return app.topic(
            name,
            key_serializer="raw",
            value_serializer="raw",
            partitions=spec.partitions,
            replicas=spec.replication_factor,
            config=dict(spec.configs),
            internal=True,
        )

    names = settings.topics
    return Topics(
        activity=topic(names.activity),
        billing=topic(names.billing),
        predictions=topic(names.predictions),
        shadow=topic(names.shadow),
        control=topic(names.control),
        audit=topic(names.audit),
        monitoring=topic(names.monitoring),
        dlq=topic(names.dlq),
    )
