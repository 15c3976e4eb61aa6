"""Named places where a crash test makes a worker kill itself, deliberately.

A crash test that kills a worker (a processor's, or a sink's) at a random moment mostly lands somewhere dull (waiting
for input). Instead the processor calls :func:`crash_point` at the places where a crash
could break a guarantee: after the first output of a step is sent, between outputs, with
table writes queued, just before and after the offset commit, while state is restored.

A test arms them with a *plan*: a folder (``DATAPLATFORM_CRASH_PLAN``) of files
``NNN.plan``, each holding one line ``<point> <n>`` ("die the n-th time this worker
passes <point>"). A starting worker claims the first unclaimed plan (an atomic rename to
``NNN.claimed-<pid>``) and, on the n-th pass, renames it to ``NNN.done`` and sends itself
SIGKILL: no clean-up, no flush, no leaving the group, as in a power cut. Workers started
afterwards take the next plan, so one folder drives a series of crashes across restarts,
and the test asserts every plan ended ``.done``; a worker that stops before its point
(cleanly, or on a failed step: :func:`give_back`) gives its plan back. Without the
variable every call is one comparison.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
from pathlib import Path

PLAN_ENV = "DATAPLATFORM_CRASH_PLAN"
POINTS = (
    "stage1.repartition-sent",   # a batch's first repartition message handed to the producer
    "stage1.state-queued",       # its entity table writes queued, not yet flushed
    "stage2.output-sent",        # a step's first output (figures or warning) handed to the producer
    "stage2.outputs-between",    # a step's second output handed to the producer
    "stage2.members-queued",     # member table writes queued, outputs flushed or not
    "stage2.heads-queued",       # area heads (rule states, figures, applied offset) queued
    "commit.before",             # offsets about to be committed
    "commit.after",              # offsets committed
    "restore",                   # a changelog batch being applied while state is restored
    "bulk-restore",              # a write batch of the bulk restore written to the local store
    # the Iceberg sink (sinks/iceberg/commits.py)
    "iceberg.history-files-written",  # a history commit's data and manifest files written, not committed
    "iceberg.history-committed",      # the history table committed, the current-state table not yet
    "iceberg.current-files-written",  # a current-state commit's files written, not committed
    "iceberg.committed",              # both tables committed, nothing else done (Kafka not told)
    "bridge.mid-batch",          # a bridge: a received batch's second message about to be read
    "bridge.detail-fetch",       # a bridge: an event's detailUrl about to be fetched
    "bridge.published",          # a bridge: a batch's events acknowledged, its messages not yet deleted
)

log = logging.getLogger(__name__)
_armed: tuple[str, int, Path] | None = None
_passes = 0


def arm_from_environment() -> tuple[str, int] | None:
    """Claim the next plan of ``$DATAPLATFORM_CRASH_PLAN`` (if any); the armed (point, n)."""
    global _armed, _passes
    folder = os.environ.get(PLAN_ENV)
    if not folder:
        return None
    for plan in sorted(Path(folder).glob("*.plan")):
        claimed = plan.with_suffix(f".claimed-{os.getpid()}")
        try:
            plan.rename(claimed)
        except FileNotFoundError:
            continue   # another worker claimed it first
        point, n = claimed.read_text().split()
        if point not in POINTS:
            raise ValueError(f"{plan}: unknown crash point {point!r}; known: {', '.join(POINTS)}")
        _armed, _passes = (point, int(n), claimed), 0
        atexit.register(give_back)
        log.warning("crash test: this worker dies the %s time it passes %s", _ordinal(int(n)), point)
        return point, int(n)
    return None


def crash_point(point: str) -> None:
    """Die here if this is the armed point's n-th pass."""
    global _passes
    if _armed is None or _armed[0] != point:
        return
    _passes += 1
    if _passes == _armed[1]:
        claimed = _armed[2]
        claimed.rename(claimed.with_suffix(".done"))
        log.warning("crash test: killing this worker at %s (pass %d)", point, _passes)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def give_back() -> None:
    """A worker that stops before its armed point returns the plan for the next one."""
    if _armed is not None and _armed[2].exists():
        _armed[2].rename(_armed[2].with_suffix(".plan"))


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
