"""Where "now" comes from, and the day numbers the processor counts in.

The processor never reads the clock inside a step: stage 1 stamps each repartition message
with the time it was sent, and stage 2 evaluates it at that :class:`Moment`, so a replayed
step sees the same "now". Tests move a :class:`ManualClock` instead of waiting.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

from dataplatform.derivations.expressions import epoch_day

DAY_MS = 86_400_000


class Clock(Protocol):
    """Where "now" comes from; tests move a :class:`ManualClock` instead of waiting."""

    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)


@dataclass
class ManualClock:
    current: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc))

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += dt.timedelta(**delta)


def today_of(clock: Clock) -> int:
    return epoch_day(clock.now().astimezone(dt.timezone.utc).date())


@dataclass(frozen=True)
class Moment:
    """One instant as an evaluation reads it: epoch milliseconds and the UTC day number
    (computed once per repartition message, not once per rule)."""

    now_ms: int
    today: int

    @classmethod
    def of_ms(cls, now_ms: int) -> "Moment":
        return cls(now_ms, now_ms // DAY_MS)

    @classmethod
    def of(cls, clock: Clock) -> "Moment":
        return cls.of_ms(int(clock.now().timestamp() * 1000))
