"""The transactional outbox: publish a service's changes exactly when its database commits.

A service cannot write its database and Kafka atomically. Instead it calls
:func:`record_change` in the *same* transaction as the business change, which adds a row
to ``outbox_events``; both commit or neither does. :class:`OutboxRelay` then reads unsent
rows in id order, publishes them through :class:`~dataplatform.producers.publisher.Publisher`, and
marks them sent only after the broker acknowledged them.

Guarantees: every committed change is published at least once, in commit (id) order. A
crash between "acknowledged" and "marked sent" publishes those rows again on restart, with
the same event ids, so consumers can drop the duplicates; nothing is lost or reordered.
One relay per database is assumed (run a single instance; a second would duplicate more).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Engine, Integer, String, func, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from dataplatform.producers.publisher import DeliveryError, Publisher
from dataplatform.products.envelope import ChangeEvent, epoch_ms
from dataplatform.products.product import DataProduct, load_products

log = logging.getLogger(__name__)
EPOCH_DATE = dt.date(1970, 1, 1)


class OutboxBase(DeclarativeBase):
    """Metadata of the outbox table, separate from any service's own models."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class OutboxEvent(OutboxBase):
    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True, doc="Commit order: the relay publishes by id.")
    product: Mapped[str] = mapped_column(String(200))
    entity_key: Mapped[str] = mapped_column(String(500))
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, doc="ChangeEvent.to_record(), dates/timestamps as ints.")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)


def create_outbox_table(engine: Engine) -> None:
    OutboxBase.metadata.create_all(engine)


# -- JSON payloads -----------------------------------------------------------------
def to_payload(value: Any) -> Any:
    """A JSON-ready copy: dates as epoch days, datetimes as epoch ms (Avro's own ints)."""
    if isinstance(value, dict):
        return {k: to_payload(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_payload(v) for v in value]
    if isinstance(value, dt.datetime):
        return epoch_ms(value if value.tzinfo else value.replace(tzinfo=dt.UTC))
    if isinstance(value, dt.date):
        return (value - EPOCH_DATE).days
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(value).decode()}
    return value


def from_payload(value: Any) -> Any:
    """Undo :func:`to_payload` where JSON cannot hold the type (decimals, bytes)."""
    if isinstance(value, dict):
        if len(value) == 1 and "$decimal" in value:
            return decimal.Decimal(value["$decimal"])
        if len(value) == 1 and "$bytes" in value:
            return base64.b64decode(value["$bytes"])
        return {k: from_payload(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_payload(v) for v in value]
    return value


def record_change(session: Session, product: DataProduct, event: ChangeEvent) -> OutboxEvent:
    """Add ``event`` to the outbox in the caller's transaction (validated first, so a bad
    record fails the business transaction rather than the relay later)."""
    for entity in (event.before, event.after):
        if entity is not None:
            product.validate_entity(entity)
    row = OutboxEvent(product=product.name, entity_key=product.key_of(event.entity), event_id=event.event_id,
                      payload=to_payload(event.to_record()))
    session.add(row)
    return row


def event_of(row: OutboxEvent) -> ChangeEvent:
    return ChangeEvent.from_record(from_payload(row.payload))


# -- the relay -----------------------------------------------------------------------
PublisherFactory = Callable[[DataProduct], Publisher]


class OutboxRelay:
    """Publishes unsent outbox rows in id order and marks them sent after the broker's ack."""

    def __init__(self, engine: Engine, *, publisher_factory: PublisherFactory | None = None,
                 publishers: Mapping[str, Publisher] | None = None, batch_size: int = 500,
                 products: Mapping[str, DataProduct] | None = None) -> None:
        if publisher_factory is None and publishers is None:
            raise ValueError("OutboxRelay needs publisher_factory= or publishers= (by product name)")
        self.engine = engine
        self.batch_size = batch_size
        self._factory = publisher_factory
        self._publishers: dict[str, Publisher] = dict(publishers or {})
        self._owned: list[Publisher] = []
        self._products = dict(products) if products is not None else None
        create_outbox_table(engine)

    def publisher_for(self, product_name: str) -> Publisher:
        """The open publisher for a product (opened now, so schema problems show at start)."""
        if product_name not in self._publishers:
            if self._factory is None:
                raise KeyError(f"outbox row for product {product_name!r}, but the relay has no publisher for it "
                               f"(has: {', '.join(sorted(self._publishers))})")
            if self._products is None:
                self._products = load_products()
            publisher = self._factory(self._products[product_name]).open()
            self._publishers[product_name] = publisher
            self._owned.append(publisher)
        return self._publishers[product_name]

    def pending(self) -> int:
        """How many rows wait to be published."""
        with Session(self.engine) as session:
            return session.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.sent_at.is_(None))) or 0

    def run_once(self) -> int:
        """Publish one batch; the number of rows marked sent.

        The batch is sent asynchronously and flushed (the idempotent producer keeps the
        order per partition); rows are marked sent up to the first that failed, so a later
        retry cannot overtake an earlier change. Raises DeliveryError after marking.
        """
        with Session(self.engine) as session:
            rows = session.scalars(select(OutboxEvent).where(OutboxEvent.sent_at.is_(None))
                                   .order_by(OutboxEvent.id).limit(self.batch_size)).all()
            batch = [(row.id, row.product, event_of(row)) for row in rows]
        if not batch:
            return 0
        handles = []
        used: dict[str, Publisher] = {}
        for row_id, product_name, event in batch:
            publisher = used.setdefault(product_name, self.publisher_for(product_name))
            handles.append((row_id, publisher.publish(event, wait=False)))
        errors: list[DeliveryError] = []
        for publisher in used.values():
            try:
                publisher.flush()
            except DeliveryError as exc:
                errors.append(exc)
        sent: list[int] = []
        for row_id, handle in handles:
            if not handle.succeeded():
                break
            sent.append(row_id)
        self._mark_sent(sent)
        if errors:
            raise DeliveryError([f for e in errors for f in e.failures])
        return len(sent)

    def _mark_sent(self, ids: list[int]) -> None:
        if not ids:
            return
        now = _utcnow()
        with Session(self.engine) as session, session.begin():
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(chunk)).values(sent_at=now))

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
        """Relay until ``stop_event`` is set; a failed batch is retried after a pause."""
        while not stop_event.is_set():
            try:
                sent = self.run_once()
            except Exception as exc:  # noqa: BLE001 - keep relaying; the rows stay unsent
                log.error("outbox relay: %s; retrying in %.1fs", exc, max(poll_interval, 1.0))
                stop_event.wait(max(poll_interval, 1.0))
                continue
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
