"""The field suite: what an operator would do to a running deployment, bounded and checked.

Each scenario runs real worker processes (``profitstream worker``) on the session's live
broker (Tansu, or Apache Kafka with ``PROFITSTREAM_TEST_KAFKA=apache``) and Redis, under
its own app id and topics, while events stream in at a steady rate, and does something an
operator or an accident does to a deployment: SIGKILL it over and over (sometimes on an
empty disk), kill one of two workers, restart with another ``PROFITSTREAM_MODEL``, meet a
control topic with a short retention, feed it poison messages on every topic it reads.

Every scenario stops by itself within its limits and ends with the same checks:

- no event lost or applied twice: every client's state (``version`` and features) equals
  the offline builder's (``tests.services.event_log.rebuild``);
- Redis complete: every client's hash holds its latest event time, and a prediction when
  a model is deployed;
- every client's latest prediction margin equals a crash-free reference (the offline
  features scored by the same model);
- ``/ready`` honest at every sample (a background thread samples it every 0.5 s): it
  answers while the process lives, names what it waits for when it says 503, and a worker
  that says 200 applies the input that arrives;
- each worker process alive until the test stops it.

The moving parts live in ``tests/field/harness.py``; run the suite with
``pytest -m field`` (``-s`` shows the figures each scenario prints).
"""
