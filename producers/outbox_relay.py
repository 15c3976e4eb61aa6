"""The outbox relay: publishes the rows services commit to their outbox table, in id order.

It reads unsent rows in id order, publishes them through
:class:`~dataplatform.producers.publisher.Publisher`, and marks them sent only after the
broker acknowledged them (``dataplatform outbox relay`` runs it; docs/outbox.md).

Guarantees: every committed change is published at least once, in commit (id) order per
entity. A crash between "acknowledged" and "marked sent" publishes those rows again on
restart, identical (same event ids), so consumers drop the duplicates; nothing is lost or
reordered. One relay per database is assumed (a second would only duplicate more).

While the database or the broker is down, :meth:`OutboxRelay.run_forever` retries every
second and logs the outage once when it starts and once when it ends
(:mod:`dataplatform.outages`); its lag and rows published go to Prometheus and, every
``report_every`` seconds while it has work, to its log.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from sqlalchemy import Engine, Row, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from dataplatform.metrics import OUTBOX_LAG, OUTBOX_LAST_PUBLISHED, OUTBOX_PUBLISHED, OUTBOX_UP
from dataplatform.outages import Outages
from dataplatform.producers.outbox import DEFAULT_TABLE, create_outbox_table, event_of, outbox_table
from dataplatform.producers.publisher import DeliveryError, DeliveryHandle, Publisher, PublisherError
from dataplatform.products.product import DataProduct, load_products

log = logging.getLogger(__name__)
PublisherFactory = Callable[[DataProduct], Publisher]
DATABASE, BROKER, ROWS = "database", "broker", "outbox rows"


class OutboxRowError(ValueError):
    """A row the relay cannot publish (unknown product, bad payload): it stops there to keep the order."""

    def __init__(self, row: Row, why: str) -> None:
        super().__init__(f"outbox row {row.id} (product {row.product!r}, event {row.event_id}) cannot be published: "
                         f"{why}. The relay stops at this row to keep the order; correct the row (or delete it "
                         "if the change must not be published) and it carries on.")


def as_utc(value: dt.datetime) -> dt.datetime:
    """SQLite gives back naive datetimes; the relay writes UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class OutboxRelay:
    """Publishes unsent outbox rows in id order and marks them sent after the broker's ack."""

    def __init__(self, engine: Engine, *, publisher_factory: PublisherFactory | None = None,
                 publishers: Mapping[str, Publisher] | None = None, batch_size: int = 500,
                 products: Mapping[str, DataProduct] | None = None, table: str = DEFAULT_TABLE,
                 only: Collection[str] | None = None, name: str = "outbox-relay", create_table: bool = True,
                 report_every: float = 60.0) -> None:
        """``only``: relay the rows of these products and leave the others; ``name``: this
        relay in logs and metrics (the instance id); ``create_table``: create the table
        if missing (the CLI leaves that to ``outbox init``)."""
        if publisher_factory is None and publishers is None:
            raise ValueError("OutboxRelay needs publisher_factory= or publishers= (by product name)")
        self.engine = engine
        self.batch_size = batch_size
        self.table = outbox_table(table)
        self.only = sorted(only) if only else None
        self.name = name
        self.report_every = report_every
        self.lag_seconds = 0.0
        self.published = 0
        self._factory = publisher_factory
        self._publishers: dict[str, Publisher] = dict(publishers or {})
        self._owned: list[Publisher] = []
        self._products = dict(products) if products is not None else None
        if create_table:
            create_outbox_table(engine, table)

    def publisher_for(self, product_name: str) -> Publisher:
        """The open publisher for a product (opened now, so schema problems show at start)."""
        if product_name not in self._publishers:
            if self._factory is None:
                raise KeyError(f"outbox row for product {product_name!r}, but the relay has no publisher for it "
                               f"(has: {', '.join(sorted(self._publishers))})")
            if self._products is None:
                self._products = load_products()
            if product_name not in self._products:
                raise KeyError(f"no data product named {product_name!r} (known: {', '.join(sorted(self._products))})")
            try:
                publisher = self._factory(self._products[product_name])
            except ValueError as exc:  # settings, not the row: say so apart from row problems
                raise PublisherError(f"cannot make a publisher for {product_name}: {exc}") from None
            publisher.open()
            self._publishers[product_name] = publisher
            self._owned.append(publisher)
        return self._publishers[product_name]

    def _unsent(self):  # noqa: ANN202 - a select
        query = select(self.table).where(self.table.c.sent_at.is_(None))
        return query.where(self.table.c.product.in_(self.only)) if self.only else query

    def pending(self) -> int:
        """How many rows wait to be published."""
        with self.engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(self._unsent().subquery())) or 0

    def run_once(self) -> int:
        """Publish one batch; the number of rows marked sent.

        The batch is sent asynchronously and flushed (the idempotent producer keeps the
        order per partition); rows are marked sent up to the first that failed, so a later
        retry cannot overtake an earlier change. Raises after marking: DeliveryError when
        the broker did not acknowledge, OutboxRowError at a row that cannot be published.
        """
        with self.engine.connect() as conn:
            rows = conn.execute(self._unsent().order_by(self.table.c.id).limit(self.batch_size)).all()
        now = dt.datetime.now(dt.UTC)
        self.lag_seconds = max(0.0, (now - as_utc(rows[0].created_at)).total_seconds()) if rows else 0.0
        OUTBOX_LAG.labels(self.name).set(self.lag_seconds)
        if not rows:
            return 0
        handles: list[tuple[Row, DeliveryHandle]] = []
        used: dict[str, Publisher] = {}
        stopped_at: Exception | None = None
        for row in rows:
            try:
                event = event_of(row)
                publisher = used[row.product] = self.publisher_for(row.product)
                handles.append((row, publisher.publish(event, wait=False)))
            except (KeyError, ValueError, TypeError) as exc:  # the row: unknown product, bad payload, schema refuses
                stopped_at = OutboxRowError(row, str(exc).strip("'\""))
                break
        errors = [exc for exc in map(_flush, used.values()) if exc is not None]
        sent = []
        for row, handle in handles:
            if not handle.succeeded():
                break
            sent.append(row)
        self._mark_sent(sent)
        if errors:
            raise DeliveryError([f for e in errors for f in e.failures])
        if stopped_at is not None:
            raise stopped_at
        return len(sent)

    def _mark_sent(self, rows: list[Row]) -> None:
        if not rows:
            return
        now = dt.datetime.now(dt.UTC)
        ids = [row.id for row in rows]
        with self.engine.begin() as conn:
            for start in range(0, len(ids), 500):
                conn.execute(update(self.table).where(self.table.c.id.in_(ids[start:start + 500])).values(sent_at=now))
        self.published += len(rows)
        counts: dict[str, int] = {}
        for row in rows:
            counts[row.product] = counts.get(row.product, 0) + 1
        for product, count in counts.items():
            OUTBOX_PUBLISHED.labels(self.name, product).inc(count)
            OUTBOX_LAST_PUBLISHED.labels(self.name, product).set(now.timestamp())

    def drain(self, stop_event: threading.Event | None = None) -> int:
        """Publish until nothing is pending; the number of rows sent."""
        total = 0
        while not (stop_event and stop_event.is_set()):
            sent = self.run_once()
            total += sent
            if sent == 0:
                break
        return total

    def run_forever(self, stop_event: threading.Event, poll_interval: float = 0.2) -> None:
        """Relay until ``stop_event`` is set. A failed batch is retried every second; an
        outage of the database, the broker or a row that cannot be published is logged
        when it starts and when it ends, not at every retry."""
        retry = max(poll_interval, 1.0)
        outages = Outages(log, f"outbox relay {self.name}", retry,
                          on_change=lambda part, up: OUTBOX_UP.labels(self.name, part).set(1 if up else 0))
        for part in (DATABASE, BROKER):
            OUTBOX_UP.labels(self.name, part).set(1)
        reported_at, reported = time.monotonic(), self.published
        while not stop_event.is_set():
            try:
                sent = self.run_once()
            except Exception as exc:  # noqa: BLE001 - keep relaying; the rows stay unsent
                part = (DATABASE if isinstance(exc, SQLAlchemyError) else ROWS if isinstance(exc, OutboxRowError)
                        else BROKER)
                outages.failed(part, exc)
                stop_event.wait(retry)
                continue
            outages.succeeded(DATABASE)
            if sent:
                outages.succeeded(BROKER)
                outages.succeeded(ROWS)
            if time.monotonic() - reported_at >= self.report_every:
                if self.published > reported or self.lag_seconds > 0:
                    log.info("outbox relay %s: %d rows published in the last %.0f s, lag %.1f s", self.name,
                             self.published - reported, time.monotonic() - reported_at, self.lag_seconds)
                reported_at, reported = time.monotonic(), self.published
            if sent < self.batch_size:
                stop_event.wait(poll_interval)

    def close(self) -> None:
        """Flush and close the publishers this relay opened."""
        owned, self._owned = self._owned, []
        for publisher in owned:
            publisher.close()
        for name in [n for n, p in self._publishers.items() if p in owned]:
            del self._publishers[name]

    def __enter__(self) -> "OutboxRelay":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _flush(publisher: Publisher) -> DeliveryError | None:
    try:
        publisher.flush()
    except DeliveryError as exc:
        return exc
    return None
