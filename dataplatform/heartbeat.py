"""Processor heartbeats: how operations tell "all clear" from "nothing running".

A quiet warnings page means either that no area is short of housing or that nothing is
evaluating the rules any more. To tell the two apart, every processor component publishes
a small JSON heartbeat on its timer to one compacted topic: one heartbeat per derived
product it produces, keyed by ``<component>:<derived product>``, so the topic always holds
the latest heartbeat of each component and product.
Readers (the web page, ``/metrics``) keep the newest heartbeat per derived product and call
the processor *late* when it has been silent for longer than the product's declared refresh
period (``refreshPeriod`` in its manifest) counted from when it was last heard or, if later,
from when the reader started: a processor started with the reader has that long to report
(it is *starting* meanwhile), and a heartbeat left on the topic by an earlier run is no
false alarm at start. A reader reads the topic from its beginning before it judges, so a
restarted web service never says "never heard" of a processor that has reported.

The contract is this module: the topic name, the :class:`Heartbeat` record and its JSON,
:func:`publish_heartbeat` for writers and :class:`HeartbeatBoard` for readers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from dataplatform.background import BackgroundReader
from dataplatform.config import Settings
from dataplatform.kafka_config import client_config
from dataplatform.products.envelope import epoch_ms, from_epoch_ms
from dataplatform.topics import TopicSpec, create_missing, watermarks

log = logging.getLogger(__name__)
HEARTBEAT_TOPIC = "_dataplatform.heartbeats"
#: Keep the last heartbeat of every component; segments roll hourly so compaction can run.
HEARTBEAT_TOPIC_CONFIG = {"cleanup.policy": "compact", "segment.ms": "3600000", "min.compaction.lag.ms": "0"}


@dataclass(frozen=True)
class Heartbeat:
    """One component's word that it is alive, and how far its evaluation has got.

    ``last_evaluation_ms``: when it last evaluated the rules / recomputed the product;
    ``last_input_event_ms``: the timestamp of the newest input event it has applied;
    ``ts_ms``: when this heartbeat was sent. The optional figures feed ``/metrics``.
    """

    component: str
    derived_product: str
    last_evaluation_ms: int | None
    last_input_event_ms: int | None
    ts_ms: int = dataclasses.field(default_factory=epoch_ms)
    step_seconds: float | None = None   # time of the last processing step
    events_in: int | None = None        # input events applied since the component started
    events_out: int | None = None       # output events (figures, warnings) sent since it started

    @property
    def key(self) -> bytes:
        return f"{self.component}:{self.derived_product}".encode()

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> "Heartbeat":
        raw = json.loads(data)
        known = {f.name for f in dataclasses.fields(cls)}
        missing = {"component", "derived_product"} - set(raw)
        if missing:
            raise ValueError(f"heartbeat without {', '.join(sorted(missing))}: {raw!r}")
        return cls(**{k: v for k, v in raw.items() if k in known})  # newer writers may add fields

    def age_s(self, at_ms: int | None = None) -> float:
        return ((at_ms if at_ms is not None else epoch_ms()) - self.ts_ms) / 1000


def ensure_heartbeat_topic(bootstrap: str | None = None, settings: Settings | None = None,
                           topic: str = HEARTBEAT_TOPIC) -> bool:
    """Create the compacted heartbeat topic if it is missing; True if it was created."""
    admin = AdminClient(client_config(bootstrap, settings))
    return bool(create_missing(admin, [TopicSpec(topic, 1, HEARTBEAT_TOPIC_CONFIG)], settings))


def publish_heartbeat(producer: Producer, heartbeat: Heartbeat, topic: str = HEARTBEAT_TOPIC) -> None:
    """Send ``heartbeat`` without blocking (the caller's timer must not stall on Kafka).

    The producer delivers it in the background; a heartbeat that fails is simply replaced
    by the next one, which is why no delivery report is awaited here.
    """
    producer.produce(topic, key=heartbeat.key, value=heartbeat.to_json())
    producer.poll(0)


@dataclass(frozen=True)
class ProcessorStatus:
    """What the warnings page says about one derived product's processor."""

    derived_product: str
    refresh_period_s: int
    heartbeat: Heartbeat | None
    checked_at_ms: int
    watching_since_ms: int = 0   # when the reader started: the processor's time to report counts from here
    caught_up: bool = True       # the reader has read the heartbeats already on the topic

    @property
    def state(self) -> str:
        """``ok``; ``starting`` (not yet heard, or last heard before the reader started, and the
        refresh period since the reader started has not passed; or the topic not read yet);
        ``late`` (silent for longer than the refresh period since last heard or the reader
        started); ``unknown`` (never heard, a refresh period after the reader started)."""
        hb, period_ms = self.heartbeat, self.refresh_period_s * 1000
        if hb is not None and self.checked_at_ms - hb.ts_ms <= period_ms:
            return "ok"
        if not self.caught_up or self.checked_at_ms - self.watching_since_ms <= period_ms:
            return "starting"
        return "unknown" if hb is None else "late"

    @property
    def alarming(self) -> bool:
        """Whether the page must say the warnings may be out of date."""
        return self.state in ("late", "unknown")

    def to_dict(self) -> dict:
        hb = self.heartbeat
        return {"derived_product": self.derived_product, "refresh_period_s": self.refresh_period_s,
                "state": self.state, "component": hb.component if hb else None,
                "heartbeat_at": _iso(hb.ts_ms) if hb else None,
                "last_evaluation_at": _iso(hb.last_evaluation_ms) if hb else None,
                "last_input_event_at": _iso(hb.last_input_event_ms) if hb else None,
                "heartbeat_age_s": round(hb.age_s(self.checked_at_ms), 1) if hb else None}


def _iso(ms: int | None) -> str | None:
    return from_epoch_ms(ms).isoformat() if ms else None


class HeartbeatBoard(BackgroundReader):
    """The latest heartbeat of every component, followed from the topic on a background thread."""

    thread_name = "heartbeats"

    def __init__(self, bootstrap: str | None = None, settings: Settings | None = None,
                 topic: str = HEARTBEAT_TOPIC) -> None:
        super().__init__()
        self.bootstrap, self.settings, self.topic = bootstrap, settings, topic
        self._latest: dict[str, Heartbeat] = {}
        self._lock = threading.Lock()
        self.ready = threading.Event()       # the topic is assigned
        self.caught_up = threading.Event()   # the heartbeats already on the topic are read
        self.started_ms = epoch_ms()

    def record(self, heartbeat: Heartbeat) -> None:
        with self._lock:
            seen = self._latest.get(heartbeat.key)
            if seen is None or heartbeat.ts_ms >= seen.ts_ms:
                self._latest[heartbeat.key] = heartbeat

    def latest(self) -> dict[str, Heartbeat]:
        """The newest heartbeat per derived product (across its components)."""
        with self._lock:
            beats = list(self._latest.values())
        newest: dict[str, Heartbeat] = {}
        for hb in beats:
            if hb.derived_product not in newest or hb.ts_ms > newest[hb.derived_product].ts_ms:
                newest[hb.derived_product] = hb
        return newest

    def components(self) -> list[Heartbeat]:
        with self._lock:
            return sorted(self._latest.values(), key=lambda h: h.key)

    def status(self, refresh_periods_s: dict[str, int], at_ms: int | None = None) -> list[ProcessorStatus]:
        """One status per derived product named in ``refresh_periods_s`` (heard from or not)."""
        latest, at, caught_up = self.latest(), at_ms if at_ms is not None else epoch_ms(), self.caught_up.is_set()
        return [ProcessorStatus(name, period, latest.get(name), at, self.started_ms, caught_up)
                for name, period in sorted(refresh_periods_s.items())]

    # -- following the topic ---------------------------------------------------------
    def run(self) -> None:
        try:
            ensure_heartbeat_topic(self.bootstrap, self.settings, self.topic)
        except KafkaException as exc:  # e.g. no CREATE right: read it once someone else has made it
            log.warning("could not create the heartbeat topic %s: %s", self.topic, exc)
        consumer = Consumer({**client_config(self.bootstrap, self.settings), "group.id": "dataplatform-heartbeats",
                             "enable.auto.commit": False})
        try:
            partition = TopicPartition(self.topic, 0, OFFSET_BEGINNING)
            consumer.assign([partition])
            self.ready.set()
            try:
                low, end = watermarks(consumer, partition, 10)
            except KafkaException:   # then caught up once a poll finds nothing more
                low, end = 0, None
            if end is not None and end <= low:
                self.caught_up.set()   # nothing on the topic yet
            while not self._stop.is_set():
                msg = consumer.poll(0.5)
                if msg is not None and not msg.error() and msg.value() is not None:
                    try:
                        self.record(Heartbeat.from_json(msg.value()))
                    except (ValueError, TypeError) as exc:
                        log.warning("skipping a heartbeat that is not the agreed JSON at offset %s: %s",
                                    msg.offset(), exc)
                # caught up once the last heartbeat there at start is recorded (a poll that finds
                # nothing says so only when the end could not be read: the first fetch may be late)
                if end is None and msg is None or (end is not None and msg is not None and not msg.error()
                                                   and msg.offset() >= end - 1):
                    self.caught_up.set()
        finally:
            consumer.close()
