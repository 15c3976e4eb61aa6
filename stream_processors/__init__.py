"""Stream processors compiled from derivation specs, in three rooms (docs/architecture.md):

* :mod:`.core`: what an event does to an entity, a group, a rule, in plain Python (no Faust,
  no Kafka client, no asyncio), tested without a broker;
* :mod:`.engine`: the Faust app that runs the core's steps on Kafka, and everything that
  knows Faust (its patches, the step barrier, the tables);
* :mod:`.deployment`: topics, worker processes and their supervision.

:mod:`.config` (which derivation, topics, partitions, batching, store) sits beside the rooms:
the engine reads it to build its app and the deployment writes it for each worker, so it
belongs to neither (the engine must not import the deployment).
"""
