"""Event schemas, feature definitions, rolling state and the Redis online store."""
