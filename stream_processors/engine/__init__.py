"""The processor's engine: the Faust app (:mod:`.topology`) that runs the core's steps on
Kafka, and every module that knows Faust, mode or aiokafka.

The stage code talks to two interfaces of its own rather than to Faust's objects: the
:class:`~.checkpoint.Checkpoint` (the step barrier: outputs durable, then state durable,
then acknowledge) and the :class:`~.store.Store` (read an entity, write a step's values,
scan a group). Their Faust implementations are :class:`~.checkpoint.FaustCheckpoint` and
:class:`~.faust_patches.tables.ProcessorTable`. Around them: batches that are acknowledged
only once done (:mod:`.batches`), the check that no record went missing (:mod:`.continuity`),
the Avro codec (:mod:`.codec`), stage 2's groups held in memory (:mod:`.held_groups`), the
bulk restore of RocksDB stores (:mod:`.fast_restore`) and the framework patches
(:mod:`.faust_patches`, versions checked by tests/unit/test_framework_versions.py).

The engine imports the core and :mod:`dataplatform.stream_processors.config`, never the
deployment (tests/unit/test_floors.py): moving to another engine touches this room only.
"""
