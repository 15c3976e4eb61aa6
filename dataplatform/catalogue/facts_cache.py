"""The catalogue's view of Kafka, refreshed in the background so pages never wait for it.

Asking Kafka for freshness and consumer lag takes seconds; a product page must take
milliseconds. So one thread probes every product topic and consumer group each
``CATALOGUE_REFRESH_SECONDS`` and pages read the last result, with the time it was taken.
When Kafka is unreachable the pages keep the last result and say since when it failed.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from dataplatform.catalogue.freshness import Freshness, judge
from dataplatform.catalogue.kafka_state import KafkaProbe, KafkaSnapshot
from dataplatform.config import Settings
from dataplatform.products.product import DataProduct

log = logging.getLogger(__name__)


@dataclass
class ProductFacts:
    freshness: Freshness
    consumers: list[dict]


class CatalogueFacts:
    """Background-refreshed freshness and consumers of every product."""

    def __init__(self, products: Callable[[], dict[str, DataProduct]], bootstrap: Callable[[], str | None],
                 settings: Settings | None = None, interval: float = 15.0) -> None:
        self._products, self._bootstrap, self._settings = products, bootstrap, settings
        self.interval = interval
        self._snapshot: KafkaSnapshot | None = None
        self._lagging_since: dict[str, dt.datetime] = {}  # producer group -> since when its lag is above 0
        self.error: str | None = None
        self.failing_since: dt.datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._probe: KafkaProbe | None = None
        self._lock = threading.Lock()

    # -- life ------------------------------------------------------------------
    def ensure_started(self) -> None:
        """Start the refresher once (on the first page that needs it, so a service without
        Kafka, or a test that never shows freshness, starts no thread)."""
        with self._lock:
            if self._thread is None and self._bootstrap():
                self._thread = threading.Thread(target=self._run, name="catalogue-facts", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        if self._probe is not None:
            self._probe.close()
            self._probe = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.interval)

    # -- refreshing --------------------------------------------------------------
    def refresh(self) -> None:
        """Probe Kafka once; on failure keep the previous snapshot and remember the error."""
        bootstrap = self._bootstrap()
        if not bootstrap:
            return
        try:
            if self._probe is None:
                self._probe = KafkaProbe(bootstrap, self._settings)
            snapshot = self._probe.snapshot(p.topic for p in self._products().values())
        except Exception as exc:  # noqa: BLE001 - Kafka down must not take the catalogue down
            log.warning("could not read freshness and lag from Kafka: %s", exc)
            self.error = str(exc)
            self.failing_since = self.failing_since or dt.datetime.now(dt.timezone.utc)
            return
        self._track_lag(snapshot)
        self._snapshot, self.error, self.failing_since = snapshot, None, None

    def _track_lag(self, snapshot: KafkaSnapshot) -> None:
        for product in self._products().values():
            group = product.manifest.producerGroup
            facts = snapshot.groups.get(group) if group else None
            if facts is None:
                continue
            lag = sum(facts.lag.get(t, 0) for t in self._input_topics(product))
            if lag > 0:
                self._lagging_since.setdefault(group, snapshot.checked_at)
            else:
                self._lagging_since.pop(group, None)

    def _input_topics(self, product: DataProduct) -> list[str]:
        products = self._products()
        return [products[u].topic for u in product.manifest.upstreamProducts if u in products]

    # -- reading -------------------------------------------------------------------
    @property
    def checked_at(self) -> dt.datetime | None:
        return self._snapshot.checked_at if self._snapshot else None

    def facts(self, product: DataProduct) -> ProductFacts | None:
        """The last known facts of a product, or None before the first probe finished."""
        self.ensure_started()
        snapshot = self._snapshot
        if snapshot is None or product.topic not in snapshot.topics:
            return None
        group = product.manifest.producerGroup
        freshness = judge(product.manifest, snapshot.topics[product.topic],
                          snapshot.groups.get(group) if group else None, checked_at=snapshot.checked_at,
                          input_topics=self._input_topics(product),
                          lagging_since=self._lagging_since.get(group) if group else None)
        consumers = sorted(({"group": g.group, "lag": g.lag[product.topic], "members": g.members}
                            for g in snapshot.groups.values() if product.topic in g.lag), key=lambda c: c["group"])
        return ProductFacts(freshness, consumers)
