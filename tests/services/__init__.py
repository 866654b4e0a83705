"""Live services for tests: a Kafka broker and a Redis server, chosen by environment variables."""
