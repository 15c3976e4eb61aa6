"""The store: what the stages read and write their state through, instead of Faust's tables.

A store is a changelog-backed table of JSON values under string keys, partitioned like the
events they come from: a value lives in the partition of the input event it was written
for, so every read and write names that event (its partition). The stages need four things
of it: read one key (stage 1: an entity's latest state), write a step's values at once
(both stages), scan the keys under a prefix (stage 2: one group's head and members,
:mod:`.held_groups`), and list the prefixes present (the groups the horizon tick
re-evaluates). A value written is not read back before :meth:`.checkpoint.Checkpoint.durable`
has returned: the store takes it once its changelog record is acknowledged, so a store
always holds a prefix of its changelog.

The Faust implementation is :class:`.faust_patches.tables.ProcessorTable`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

Event = Any   # the input event a read or write belongs to: its partition is the value's


class Store(Protocol):
    """A partitioned key-value table of the processor's state."""

    @property
    def seeks(self) -> bool:
        """Whether the keys are kept in order, so that :meth:`scan` costs what it finds (else
        it looks at every key, and reading every group at once is cheaper)."""

    def read(self, event: Event, key: str) -> Any:
        """The value of ``key`` in ``event``'s partition (None if absent)."""

    def get(self, key: str) -> Any:
        """The value of ``key`` in whichever partition this worker holds it (None if absent)."""

    async def write(self, event: Event, values: Iterable[tuple[str, Any]]) -> None:
        """Queue ``(key, value)`` writes, in order, to ``event``'s partition (None deletes the
        key); the store takes them at the next :meth:`.checkpoint.Checkpoint.durable`."""

    def scan(self, prefix: str, event: Event | None = None) -> Iterator[tuple[str, Any]]:
        """Every key starting with ``prefix``, with its value (on an ordered store, in
        ``event``'s partition only)."""

    def prefixes(self, separator: str = "|") -> set[str]:
        """The distinct parts before ``separator`` of the keys this worker holds."""
