"""Every change the processor makes to Faust's and aiokafka's behaviour, in one place.

Each patch works round a defect or a cost of faust-streaming 0.15 / aiokafka 0.14 that the
processor's tests or benchmarks measured, says why in its module docstring, and has a test
that fails against the unpatched framework:

* :mod:`.transport` (the app's ``broker`` scheme ``dataplatform-kafka://``): a 100 ms fetch
  wait instead of Faust's hard-coded 1.5 s; deliveries without four tasks per message; no
  ack for a message no stream took; crash points around the commit.
  Tests: tests/unit/test_processor_transport.py.
* :mod:`.producer`: a flush that waits for every buffered write and raises if one was lost;
  a step's records sent as record batches; idempotence with ``acks=all`` outside transactions.
  Tests: tests/unit/test_processor_transport.py, tests/unit/test_processor_tables.py.
* :mod:`.recovery`: after an assignment, nothing is fetched or delivered until the streams
  are seeked to their committed offsets (offset 0 included), and a worker the group dropped
  while it recovered stops instead of resuming (one heartbeat asks the coordinator). Tests:
  tests/unit/test_processor_recovery.py, tests/integration/test_processor_seek.py.
* :mod:`.tables`: the processor's tables take a step's writes at once and send their
  changelog records as aiokafka record batches (Faust's per-write send path cost a quarter
  of a worker's CPU); the store takes a value only once its record is acknowledged (the step
  barrier, :func:`..checkpoint.durable`); reads by key prefix; a ``restore`` crash point. Tests:
  tests/unit/test_processor_tables.py, tests/unit/test_held_groups.py (and every processor
  integration test, which restores from those records).

Nothing else in the project reaches into Faust's or aiokafka's private API.

The patches were verified against the versions in :data:`VERIFIED_WITH`; ``pyproject.toml``
caps each framework below its next release, and tests/unit/test_framework_versions.py fails,
naming the patches to verify again, when the installed version is any other.
"""

#: Each framework the patches reach into: the version they were verified against, and the
#: patch modules to verify again before that version changes.
VERIFIED_WITH: dict[str, tuple[str, tuple[str, ...]]] = {
    "faust-streaming": ("0.15.3", ("transport", "producer", "recovery", "tables")),
    "mode-streaming": ("0.7.1", ("transport",)),
    "aiokafka": ("0.14.0", ("transport", "producer", "recovery", "tables")),
}
