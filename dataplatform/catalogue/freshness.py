"""Is a product fresh? The answer depends on how it is refreshed (the manifest's
``refreshMode``), so that a warnings topic that is quiet because nothing changed is not
called stale.

- ``periodic``: a new event at least every ``refreshPeriod``; an older newest event is stale.
- ``on-change``: events only when something changes. The age of the newest event says
  nothing; the producer's heartbeat does: the processor's consumer group (``producerGroup``)
  has live members (Kafka drops a member that stops heartbeating) and keeps up with its
  inputs (its lag has not stayed above zero for longer than ``refreshPeriod``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dataplatform.catalogue.kafka_state import GroupFacts, TopicFacts
from dataplatform.products.manifest import Manifest, RefreshMode


@dataclass
class Freshness:
    mode: str
    stale: bool
    reason: str
    last_event_at: dt.datetime | None
    events: int
    refresh_period_s: int
    checked_at: dt.datetime
    producer: dict | None = None

    def to_dict(self) -> dict:
        iso = lambda t: t.isoformat() if t else None  # noqa: E731
        return {"mode": self.mode, "stale": self.stale, "reason": self.reason, "last_event_at": iso(self.last_event_at),
                "events": self.events, "refresh_period_s": self.refresh_period_s, "checked_at": iso(self.checked_at),
                "producer": self.producer}


def humanise(seconds: float) -> str:
    """"5 minutes", "1 hour", "90 seconds": the largest unit that divides evenly."""
    seconds = int(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n > 1 else ''}"
    return f"{seconds} seconds"


def judge(manifest: Manifest, topic: TopicFacts, producer: GroupFacts | None, *, checked_at: dt.datetime,
          input_topics: list[str] = (), lagging_since: dt.datetime | None = None) -> Freshness:
    """Freshness of one product from what the probe saw at ``checked_at``.

    ``lagging_since``: since when the producer group's lag on ``input_topics`` has been above
    zero without a break (kept by the caller across probes), None when it is not lagging.
    """
    period = manifest.refreshPeriod.total_seconds()
    base = dict(mode=str(manifest.refreshMode), last_event_at=topic.last_event_at, events=topic.events,
                refresh_period_s=int(period), checked_at=checked_at)
    if not topic.exists:
        return Freshness(stale=True, reason="The topic does not exist yet.", **base)
    if manifest.refreshMode == RefreshMode.periodic:
        if topic.last_event_at is None:
            return Freshness(stale=True, reason="No event has been published yet.", **base)
        if (checked_at - topic.last_event_at).total_seconds() > period:
            return Freshness(stale=True, reason=f"No new event for more than the refresh period ({humanise(period)}).",
                             **base)
        return Freshness(stale=False, reason=f"New events arrive at least every {humanise(period)}.", **base)
    if not manifest.producerGroup:
        return Freshness(stale=False, reason="Publishes only when something changes; no producer heartbeat is "
                                             "declared (producerGroup), so a quiet topic is not judged.", **base)
    group = manifest.producerGroup
    if producer is None or producer.members == 0:
        return Freshness(stale=True, reason=f"The producer is not running: consumer group {group} has no live member.",
                         producer={"group": group, "members": 0, "lag": None}, **base)
    lag = sum(producer.lag.get(t, 0) for t in input_topics)
    described = {"group": group, "members": producer.members, "lag": lag}
    if lagging_since is not None and (checked_at - lagging_since).total_seconds() > period:
        return Freshness(stale=True, reason=f"The producer is {lag} events behind its inputs and has been for more "
                                            f"than the refresh period ({humanise(period)}).", producer=described, **base)
    return Freshness(stale=False, reason=f"Publishes only when something changes; the producer is running "
                                         f"({producer.members} member{'s' if producer.members != 1 else ''} of "
                                         f"{group}) and keeping up with its inputs.", producer=described, **base)
