"""Named places where a crash test makes a sink kill itself, deliberately.

``DATAPLATFORM_SINK_CRASH=<point>:<n>`` makes the sink send itself SIGKILL the n-th time
it passes ``<point>``: no clean-up, no flush, as in a power cut. A test starts each sink
process with the point it wants (the places where a crash could break a guarantee), so
the kills land there and not somewhere dull. Without the variable every call is one
comparison.
"""

from __future__ import annotations

import logging
import os
import signal

ENV = "DATAPLATFORM_SINK_CRASH"
POINTS = (
    "batch.written",     # a batch's rows written, its transaction not committed
    "batch.committed",   # rows and offsets committed, Kafka not told yet
)
log = logging.getLogger(__name__)
_passes: dict[str, int] = {}


def _armed() -> tuple[str, int] | None:
    value = os.environ.get(ENV)
    if not value:
        return None
    point, _, n = value.partition(":")
    if point not in POINTS or not n.isdigit():
        raise ValueError(f"{ENV}={value!r}: expected <point>:<n>, point one of {', '.join(POINTS)}")
    return point, int(n)


ARMED = _armed()


def crash_point(point: str) -> None:
    """Die here if this is the armed point's n-th pass."""
    if ARMED is None or ARMED[0] != point:
        return
    _passes[point] = _passes.get(point, 0) + 1
    if _passes[point] == ARMED[1]:
        log.warning("crash test: killing this sink at %s (pass %d)", point, _passes[point])
        os.kill(os.getpid(), signal.SIGKILL)
