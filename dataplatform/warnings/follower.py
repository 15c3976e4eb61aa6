"""Follow data products into a store, then tell listeners (and, for warnings, webhooks).

Runs as background threads in the web service (and in ``dataplatform run``): one reader over
the warnings product of every derivation spec, and one for the area figures behind housing's
warnings (the only figures charted over time). Each assigns every partition of its topics
itself and resumes after the highest offset already stored (per product), so each event is
stored exactly once however often the service restarts.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from dataplatform.background import BackgroundReader
from dataplatform.config import Settings
from dataplatform.kafka.reachability import KafkaReachability
from dataplatform.metrics import WARNING_TRANSITIONS
from dataplatform.product_io.reader import Position, ProductReader, ProductRecord
from dataplatform.product_io.serialization import registry_client
from dataplatform.products.envelope import entity_of
from dataplatform.products.product import DataProduct, get_product
from dataplatform.warnings.kinds import WarningKind, recognise, warning_kinds
from dataplatform.warnings.store import WarningStore
from dataplatform.warnings.webhooks import WebhookDispatcher

log = logging.getLogger(__name__)
FIGURES_PRODUCT = "area_supply_demand"   # the figures kept over time, for housing's charts and tiles


class StoreOf(Protocol):
    def add(self, change_event: dict, partition: int, offset: int) -> Any: ...
    def resume_offsets(self) -> dict[int, int]: ...


class Follower(BackgroundReader):
    """Read topics (``{topic: product}``) and hand each record to :meth:`handle`; rows newly
    stored go to the listeners (the web page's live stream)."""

    def __init__(self, topics: Mapping[str, DataProduct], *, bootstrap: str | None = None,
                 registry_url: str | None = None, settings: Settings | None = None) -> None:
        super().__init__()
        self.topics = dict(topics)
        self.settings = settings
        self.bootstrap, self.registry_url = bootstrap, registry_url
        self._listeners: list[queue.Queue] = []
        self._lock = threading.Lock()
        self.thread_name = "follow-" + "+".join(sorted({p.name for p in self.topics.values()}))
        self.ready = threading.Event()
        self.kafka = KafkaReachability(self.thread_name, log)   # says when it waits for brokers

    # -- listeners (the web page's live stream) ---------------------------------------
    def subscribe(self) -> queue.Queue:
        q: queue.Queue = queue.Queue(maxsize=1000)
        with self._lock:
            self._listeners.append(q)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self._lock:
            if q in self._listeners:
                self._listeners.remove(q)

    def _publish(self, transition: dict) -> None:
        with self._lock:
            for q in list(self._listeners):
                try:
                    q.put_nowait(transition)
                except queue.Full:
                    pass

    # -- the loop ---------------------------------------------------------------------
    def resume(self) -> dict[tuple[str, int], int]:
        """Where to start: the next offset per (topic, partition) already stored."""
        raise NotImplementedError

    def handle(self, record: ProductRecord) -> None:
        raise NotImplementedError

    def run(self) -> None:
        reader = ProductReader(self.topics, Position.at(self.resume()),
                               registry=registry_client(self.registry_url, self.settings), name="dataplatform-web",
                               bootstrap=self.bootstrap, settings=self.settings, skip_unreadable=True,
                               wait_for_topics=True, log_level=3, **self.kafka.consumer_config())
        try:
            self.ready.set()
            for record in reader.follow(self._stop.is_set):
                if record.value is not None:
                    self.handle(record)
        finally:
            reader.close()


class ProductFollower(Follower):
    """Read one product's topic into ``store``; each newly stored row goes to the listeners."""

    def __init__(self, store: StoreOf, product: DataProduct | str, *, topic: str | None = None,
                 **kwargs: Any) -> None:
        product = get_product(product) if isinstance(product, str) else product
        self.store, self.topic = store, topic or product.topic
        super().__init__({self.topic: product}, **kwargs)

    def resume(self) -> dict[tuple[str, int], int]:
        return {(self.topic, p): offset for p, offset in self.store.resume_offsets().items()}

    def handle(self, record: ProductRecord) -> None:
        row = self.store.add(record.value, record.partition, record.offset)
        if row is not None:
            self._publish(row.to_dict())


class WarningFollower(Follower):
    """The transitions of every kind of warning into the store, the page's live stream,
    webhooks and metrics.

    ``topics`` replaces a warnings product's topic (``{product: topic}``); ``topic`` reads one
    topic instead of them all, each record's kind recognised by its fields."""

    def __init__(self, store: WarningStore, *, webhooks: WebhookDispatcher | None = None,
                 kinds: list[WarningKind] | None = None, topics: Mapping[str, str] | None = None,
                 topic: str | None = None, **kwargs: Any) -> None:
        self.store, self.webhooks = store, webhooks
        self.kinds = kinds or list(warning_kinds().values())
        self.topic_of = {k.product: topic or (topics or {}).get(k.product) or get_product(k.product).topic
                         for k in self.kinds}
        self.kinds_on: dict[str, list[WarningKind]] = {}
        for kind in self.kinds:
            self.kinds_on.setdefault(self.topic_of[kind.product], []).append(kind)
        super().__init__({t: get_product(kinds_on[0].product) for t, kinds_on in self.kinds_on.items()}, **kwargs)

    def resume(self) -> dict[tuple[str, int], int]:
        out: dict[tuple[str, int], int] = {}
        for kind in self.kinds:
            for partition, offset in self.store.resume_offsets(kind.product).items():
                key = (self.topic_of[kind.product], partition)
                out[key] = max(out.get(key, 0), offset)
        return out

    def kind_of(self, record: ProductRecord) -> WarningKind | None:
        on_topic = self.kinds_on.get(record.topic, [])
        if len(on_topic) == 1:
            return on_topic[0]
        w = entity_of(record.value) or {}
        return next((k for k in on_topic if k.fields <= w.keys()), None) or recognise(w)

    def handle(self, record: ProductRecord) -> None:
        kind = self.kind_of(record)
        if kind is None:
            log.warning("skipping %s[%s]@%s: its fields match no warnings product's spec",
                        record.topic, record.partition, record.offset)
            return
        row = self.store.add(record.value, record.partition, record.offset, kind)
        if row is None:
            return
        transition = row.to_dict()
        log.info("warning %s", transition["message"])
        WARNING_TRANSITIONS.labels(transition["severity"], transition["transition"]).inc()
        self._publish(transition)
        if self.webhooks:
            self.webhooks.enqueue(transition)


class FiguresFollower(ProductFollower):
    """Each area's figures over time, the evidence a housing warning's page charts."""

    def __init__(self, store: StoreOf, **kwargs: Any) -> None:
        super().__init__(store, FIGURES_PRODUCT, **kwargs)
