"""The embedded local stack: a Kafka-compatible broker and a Redis server, as processes."""
