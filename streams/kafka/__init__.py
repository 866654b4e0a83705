"""Kafka plumbing, no domain logic: topics, records, partitions, preflight, DLQ, commit guard,
gap reads, replay, topic admin.
"""
