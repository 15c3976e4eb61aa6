"""Dropping exact repeats of change events, as every subscriber of a data product should.

A producer (or the stream processor) that crashes after sending an event and before
recording that it did sends it again when it restarts: the same event id, the same
content, at a new offset (see docs/stream-processing.md, "What a subscriber sees"). A
subscriber that remembers the event ids it has seen, and skips one seen before, sees each
event once and in order. The memory is bounded: repeats come within seconds of the
original, not a hundred thousand events later.
"""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_CAPACITY = 100_000


class RepeatFilter:
    """Remembers the last ``capacity`` event ids per topic."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._seen: dict[str, OrderedDict[str, None]] = {}
        self.repeats = 0

    def first_time(self, topic: str, event_id: str | None) -> bool:
        """True the first time ``event_id`` is seen on ``topic`` (and for events without an id)."""
        if event_id is None:
            return True
        seen = self._seen.setdefault(topic, OrderedDict())
        if event_id in seen:
            seen.move_to_end(event_id)
            self.repeats += 1
            return False
        seen[event_id] = None
        if len(seen) > self.capacity:
            seen.popitem(last=False)
        return True
