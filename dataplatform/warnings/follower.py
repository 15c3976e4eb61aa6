"""Follow a data product into a store, then tell listeners (and, for warnings, webhooks).

Runs as a background thread in the web service (and in ``dataplatform run``): one for the
warnings product, one for the area figures behind them. Each assigns every partition of its
topic itself and resumes after the highest offset already stored, so each event is stored
exactly once however often the service restarts.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Protocol

from dataplatform.background import BackgroundReader
from dataplatform.config import Settings
from dataplatform.metrics import WARNING_TRANSITIONS
from dataplatform.product_io.reader import Position, ProductReader
from dataplatform.product_io.serialization import registry_client
from dataplatform.warnings.store import WarningStore
from dataplatform.warnings.webhooks import WebhookDispatcher
from dataplatform.products.product import DataProduct, get_product

log = logging.getLogger(__name__)
WARNINGS_PRODUCT = "housing_shortfall_warnings"
FIGURES_PRODUCT = "area_supply_demand"


class StoreOf(Protocol):
    def add(self, change_event: dict, partition: int, offset: int) -> Any: ...
    def resume_offsets(self) -> dict[int, int]: ...


class ProductFollower(BackgroundReader):
    """Read one product's topic into ``store``; each newly stored row goes to the listeners."""

    default_product = WARNINGS_PRODUCT

    def __init__(self, store: StoreOf, *, bootstrap: str | None = None, registry_url: str | None = None,
                 product: DataProduct | None = None, topic: str | None = None,
                 settings: Settings | None = None) -> None:
        super().__init__()
        self.store = store
        self.settings = settings
        self.product = product or get_product(self.default_product)
        self.topic = topic or self.product.topic
        self.bootstrap, self.registry_url = bootstrap, registry_url
        self._listeners: list[queue.Queue] = []
        self._lock = threading.Lock()
        self.thread_name = f"follow-{self.product.name}"
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
    def stored(self, row: Any) -> None:
        """What to do with a row stored for the first time: tell the listeners."""
        self._publish(row.to_dict())

    def run(self) -> None:
        resume = {(self.topic, p): offset for p, offset in self.store.resume_offsets().items()}
        reader = ProductReader({self.topic: self.product}, Position.at(resume),
                               registry=registry_client(self.registry_url, self.settings), name="dataplatform-web",
                               bootstrap=self.bootstrap, settings=self.settings, skip_unreadable=True, log_level=3)
        try:
            self.ready.set()
            for record in reader.follow(self._stop.is_set):
                if record.value is None:
                    continue
                row = self.store.add(record.value, record.partition, record.offset)
                if row is not None:
                    self.stored(row)
        finally:
            reader.close()


class WarningFollower(ProductFollower):
    """Warning transitions into the store, the page's live stream, webhooks and metrics."""

    def __init__(self, store: WarningStore, *, webhooks: WebhookDispatcher | None = None, **kwargs: Any) -> None:
        super().__init__(store, **kwargs)
        self.webhooks = webhooks

    def stored(self, row: Any) -> None:
        transition = row.to_dict()
        log.info("warning %s", transition["message"])
        WARNING_TRANSITIONS.labels(transition["severity"], transition["transition"]).inc()
        self._publish(transition)
        if self.webhooks:
            self.webhooks.enqueue(transition)


class FiguresFollower(ProductFollower):
    """Each area's figures over time, the evidence a warning's page charts."""

    default_product = FIGURES_PRODUCT
