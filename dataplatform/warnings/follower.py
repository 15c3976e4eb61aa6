"""Follow the warnings data product into the store, then tell listeners and webhooks.

Runs as a background thread in the web service (and in ``dataplatform run``). It assigns
every partition of the warnings topic itself and resumes after the highest offset already
stored, so each transition is stored exactly once however often the service restarts.
"""

from __future__ import annotations

import logging
import queue
import threading

from confluent_kafka import Consumer, TopicPartition

from dataplatform.config import Settings
from dataplatform.kafka_config import consumer_config
from dataplatform.serialization import ProductSerde, registry_client
from dataplatform.warnings.store import WarningStore
from dataplatform.warnings.webhooks import WebhookDispatcher
from schemas.product import DataProduct, get_product

log = logging.getLogger(__name__)
WARNINGS_PRODUCT = "housing_shortfall_warnings"


class WarningFollower:
    def __init__(self, store: WarningStore, *, bootstrap: str | None = None, registry_url: str | None = None,
                 product: DataProduct | None = None, topic: str | None = None,
                 webhooks: WebhookDispatcher | None = None, settings: Settings | None = None) -> None:
        self.store = store
        self.settings = settings
        self.product = product or get_product(WARNINGS_PRODUCT)
        self.topic = topic or self.product.topic
        self.bootstrap, self.registry_url = bootstrap, registry_url
        self.webhooks = webhooks
        self._listeners: list[queue.Queue] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()

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
    def _assign(self, consumer: Consumer) -> None:
        metadata = consumer.list_topics(self.topic, timeout=10)
        partitions = metadata.topics[self.topic].partitions if self.topic in metadata.topics else {}
        resume = self.store.resume_offsets()
        consumer.assign([TopicPartition(self.topic, p, resume.get(p, 0)) for p in partitions] or
                        [TopicPartition(self.topic, 0, resume.get(0, 0))])

    def run(self) -> None:
        serde = ProductSerde(self.product, registry_client(self.registry_url, self.settings), auto_register=False)
        consumer = Consumer(consumer_config("dataplatform-web", self.bootstrap, self.settings, **{"log_level": 3}))
        try:
            self._assign(consumer)
            self.ready.set()
            while not self._stop.is_set():
                msg = consumer.poll(0.5)
                if msg is None or msg.error() or msg.value() is None:
                    continue
                try:
                    event = serde.deserialize_value(msg.value(), msg.topic())
                except Exception as exc:
                    log.warning("skipping undecodable warning at %s[%s]@%s: %s", msg.topic(), msg.partition(), msg.offset(), exc)
                    continue
                row = self.store.add(event, msg.partition(), msg.offset())
                if row is None:
                    continue
                transition = row.to_dict()
                log.info("warning %s", transition["message"])
                self._publish(transition)
                if self.webhooks:
                    self.webhooks.enqueue(transition)
        finally:
            consumer.close()

    def start(self) -> "WarningFollower":
        def guarded() -> None:
            try:
                self.run()
            except Exception:
                log.exception("warning follower stopped")
        self._thread = threading.Thread(target=guarded, name="warning-follower", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=15)
