"""Outages of what a long-running loop depends on, logged twice: when each starts and when it ends.

A loop that retries every second and logs every failure buries the one line that matters
under thousands (a database down for an hour wrote 3,600 identical ERRORs). Here the first
failure of a part logs one ERROR saying what failed and why; later failures of the same
part only count (at DEBUG); the first success after them logs one WARNING with the time
down and the attempts it took. A metric can follow the same transitions (``on_change``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Outage:
    part: str
    started: float          # monotonic
    started_at: dt.datetime  # wall clock, for the log line
    reason: str
    failures: int = 1


def reason_of(exc: BaseException) -> str:
    """One line saying why: the driver's own message for a database error (not SQLAlchemy's
    statement and background link), else the first line of the exception, with its type."""
    inner = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    failures = getattr(exc, "failures", None)  # a DeliveryError: the broker's own reason
    if failures:
        text = f"{text} ({failures[0].error})"
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__


class Outages:
    """Tracks which parts are down and logs each outage's start and end once."""

    def __init__(self, log: logging.Logger, who: str, retry_every: float,
                 on_change: Callable[[str, bool], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log, self.who, self.retry_every = log, who, retry_every
        self.on_change = on_change
        self.clock = clock
        self.current: dict[str, Outage] = {}

    def failed(self, part: str, exc: BaseException) -> None:
        """``part`` failed now: an ERROR if that starts an outage, else only a count."""
        reason = reason_of(exc)
        outage = self.current.get(part)
        if outage is not None:
            outage.failures += 1
            self.log.debug("%s: %s still unavailable (attempt %d): %s", self.who, part, outage.failures, reason)
            return
        self.current[part] = Outage(part, self.clock(), dt.datetime.now(dt.UTC), reason)
        self.log.error("%s: %s unavailable: %s. Retrying every %.0f s; the next line about it says when it is back.",
                       self.who, part, reason, self.retry_every)
        if self.on_change:
            self.on_change(part, False)

    def succeeded(self, part: str) -> Outage | None:
        """``part`` worked now: a WARNING with the time down if it was down; the outage that ended."""
        outage = self.current.pop(part, None)
        if outage is not None:
            down = self.clock() - outage.started
            self.log.warning("%s: %s is back after %.1f s down (since %s, %d failed attempts)", self.who, part,
                             down, outage.started_at.strftime("%H:%M:%S UTC"), outage.failures)
        if self.on_change and outage is not None:
            self.on_change(part, True)
        return outage

    def is_down(self, part: str) -> bool:
        return part in self.current
