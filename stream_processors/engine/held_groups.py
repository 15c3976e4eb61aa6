"""Stage 2's groups in memory, read from the groups table as each is first needed.

Stage 2 steps a group against the group as it holds it in memory (its members'
contributions and its head: :class:`..core.group_table.HeldGroup`). After a rebalance, the table
holds what the changelogs of the worker's partitions restored, and every group is read again
from it (:func:`..core.group_table.rebuild`, which also undoes a step that never finished).

**When.** On a ``rocksdb://`` store a group is read when a batch first needs it: one seek and
the group's own keys. A restarted worker's first output then waits for the groups its first
batch touches, not for the whole state: reading every group at once took about 25 s of a
30 s restart with a million entities (docs/benchmarks.md, "Restart with state"). On
``memory://`` the restore has already read every changelog record, and finding one group's
keys means looking at every key, so the first need reads every group in one pass.

**Garbage collection** is paused while groups are read: a read makes one object per member
and nothing to collect, and at a million members Python's cyclic collector, re-scanning the
growing heap, tripled the time of the pass.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator

from dataplatform.stream_processors.core.group_state import GroupState
from dataplatform.stream_processors.core.group_table import NOTHING_APPLIED, HeldGroup, head_key, rebuild
from dataplatform.stream_processors.engine.store import Event, Store


class HeldGroups:
    """The groups stage 2 holds, read again from ``table`` after each rebalance
    (``generation()`` changes with every rebalance)."""

    def __init__(self, table: Store, generation: Callable[[], int]) -> None:
        self._table, self._generation = table, generation
        self._held: dict[str, HeldGroup] = {}
        self._read: set[str] = set()   # the codes read from the table since the rebalance, held or not
        self._all_read = False
        self._built = None

    def renew(self) -> None:
        """After a rebalance, forget every group (each is read again when next needed)."""
        if self._built != self._generation():
            self._held, self._read, self._all_read, self._built = {}, set(), False, self._generation()

    def get(self, code: str, event: Event) -> HeldGroup:
        """The group as held, read from the table (in ``event``'s partition, where the group
        lives) when first needed; a new empty group, not yet held, if the table has none."""
        if code not in self._read and not self._all_read:
            with _collector_paused():
                if self._table.seeks:
                    self._held.update(rebuild(self._table.scan(head_key(code), event)))
                    self._read.add(code)
                else:
                    self._held = rebuild(self._table.scan(""))
                    self._all_read = True
        return self._held.get(code) or HeldGroup(GroupState(code, ""))

    def keep(self, held: HeldGroup) -> None:
        """Hold a group new here, once a step has changed it."""
        self._held.setdefault(held.group.code, held)

    def stepped_codes(self) -> list[str]:
        """Every group with a finished step (a head) this worker holds, read or not yet read:
        what the horizon tick re-evaluates. Reads the table's heads, not its members."""
        if self._built != self._generation():   # a rebalance the stage 2 agent has not seen yet
            held, read, all_read = {}, set(), False
        else:
            held, read, all_read = self._held, self._read, self._all_read
        codes = {code for code, h in held.items() if h.applied != NOTHING_APPLIED}
        if not all_read:
            codes |= {code for code in self._table.prefixes("|") - read
                      if code not in held and self._table.get(head_key(code)) is not None}
        return sorted(codes)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
