"""A worker's heartbeats, and what their acknowledgements say: whether Kafka takes its writes.

A worker cut off from the brokers keeps running and waiting; aiokafka logs each failed
connection (``Unable connect to node``), but nothing of the platform's own said when the
outage started or ended, as the sinks and followers do (:mod:`dataplatform.kafka.reachability`).
The heartbeat is the one write a worker makes whatever its input, so its acknowledgements
tell: none for :data:`OUTAGE_AFTER` heartbeat intervals (the threshold ``/metrics`` and the
``ProcessorHeartbeatLate`` alert judge the heartbeat's age by, too), and one ERROR says the
worker's writes are not reaching Kafka; the first acknowledgement after, one WARNING with
the time down (:class:`dataplatform.outages.Outages`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import faust

from dataplatform.heartbeat import HEARTBEAT_TOPIC, Heartbeat
from dataplatform.kafka.reachability import PART, KafkaUnreachable
from dataplatform.outages import Outages

log = logging.getLogger(__name__)
OUTAGE_AFTER = 5   # heartbeat intervals without an acknowledgement


class Heartbeats:
    """Sends a worker's heartbeats (one per derived product) and logs the outages their
    missing acknowledgements show."""

    def __init__(self, app: faust.App, component: str, interval_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.topic = app.topic(HEARTBEAT_TOPIC, key_serializer="raw", value_serializer="raw", internal=False)
        self.interval_s, self.clock = interval_s, clock
        self.outages = Outages(log, f"processor {component}", interval_s, clock=clock)
        self._acknowledged: float | None = None   # counted from the first send: start-up is no outage

    async def send(self, beats: list[Heartbeat]) -> None:
        """Send ``beats``; first, say so if none was acknowledged for too long."""
        if self._acknowledged is None:
            self._acknowledged = self.clock()
        silent = self.clock() - self._acknowledged
        if silent > OUTAGE_AFTER * self.interval_s:
            self.outages.failed(PART, KafkaUnreachable(
                f"no heartbeat acknowledged for {silent:.0f} s: the brokers are unreachable, or fewer replicas "
                "are in sync than min.insync.replicas; processing waits"))
        for beat in beats:
            sent = await self.topic.send(key=beat.key, value=beat.to_json())
            sent.add_done_callback(self.acknowledged)

    def acknowledged(self, sent: asyncio.Future) -> None:
        """A heartbeat's delivery ended: written, the outage (if any) is over."""
        if sent.cancelled() or sent.exception() is not None:
            return
        self._acknowledged = self.clock()
        self.outages.succeeded(PART)
