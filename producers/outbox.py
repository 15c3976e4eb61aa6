"""The transactional outbox, service side: the table and how a service writes its changes into it.

A service cannot write its database and Kafka atomically. Instead it calls
:func:`record_change` in the *same* transaction as the business change, which adds a row
to the outbox table (``outbox_events`` unless named otherwise); both commit or neither
does. The relay (:mod:`~dataplatform.producers.outbox_relay`, ``dataplatform outbox relay``)
then publishes the rows in id order and marks them sent once the broker acknowledged them.

The table is a contract, not a private detail: a service in another language writes the
same columns itself (docs/outbox.md), and ``dataplatform outbox init`` creates it or prints
its DDL for a migration tool.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import (JSON, BigInteger, DateTime, Engine, Integer, MetaData, String, Table, create_mock_engine, func,
                        insert)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from dataplatform.products.envelope import ChangeEvent, epoch_ms
from dataplatform.products.product import DataProduct

EPOCH_DATE = dt.date(1970, 1, 1)
DEFAULT_TABLE = "outbox_events"


class OutboxBase(DeclarativeBase):
    """Metadata of the outbox table, separate from any service's own models."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class OutboxEvent(OutboxBase):
    __tablename__ = DEFAULT_TABLE

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True, doc="Commit order: the relay publishes by id.")
    product: Mapped[str] = mapped_column(String(200))
    entity_key: Mapped[str] = mapped_column(String(500))
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, doc="ChangeEvent.to_record(), dates/timestamps as ints.")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow,
                                                    server_default=func.now())
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)


@lru_cache(maxsize=32)
def outbox_table(name: str = DEFAULT_TABLE) -> Table:
    """The outbox table called ``name`` (``table`` or ``schema.table``): the same columns,
    indexes and constraints as :class:`OutboxEvent`, under another name when a service
    needs one (two outboxes in one database, a naming rule)."""
    schema, _, table = name.rpartition(".")
    if not table:
        raise ValueError(f"outbox table name {name!r} is empty; give a name like outbox_events or myschema.outbox_events")
    if name == DEFAULT_TABLE:
        return OutboxEvent.__table__  # type: ignore[return-value]
    copy = OutboxEvent.__table__.to_metadata(MetaData(), schema=schema or None, name=table)
    for index in copy.indexes:  # the default's index name would clash in the same schema
        index.name = f"ix_{table}_sent_at"
    return copy


def create_outbox_table(engine: Engine, table: str = DEFAULT_TABLE) -> None:
    """Create the outbox table (and its index) unless it exists."""
    outbox_table(table).create(engine, checkfirst=True)


def outbox_ddl(url: str, table: str = DEFAULT_TABLE) -> str:
    """The SQL that creates the outbox table in ``url``'s dialect, for a migration tool."""
    statements: list[str] = []

    def collect(sql, *_args, **_kw) -> None:  # noqa: ANN001 - SQLAlchemy's DDL element
        statements.append(str(sql.compile(dialect=engine.dialect)).strip() + ";")

    engine = create_mock_engine(url, collect)
    outbox_table(table).create(engine, checkfirst=False)  # type: ignore[arg-type]
    return "\n\n".join(statements) + "\n"


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


def record_change(session: Session, product: DataProduct, event: ChangeEvent, *,
                  table: str = DEFAULT_TABLE) -> None:
    """Add ``event`` to the outbox in the caller's transaction.

    The record is validated first, so a bad record fails the business transaction rather
    than the relay later. The session's pending business changes are flushed before the
    outbox row is inserted: on a database with row locks (PostgreSQL) the entity's lock is
    then held before the row gets its id, so two transactions changing one entity get ids
    in their commit order, the order the relay publishes in.
    """
    for entity in (event.before, event.after):
        if entity is not None:
            product.validate_entity(entity)
    session.flush()
    session.execute(insert(outbox_table(table)).values(
        product=product.name, entity_key=product.key_of(event.entity), event_id=event.event_id,
        payload=to_payload(event.to_record()), created_at=_utcnow()))


def event_of(row: Any) -> ChangeEvent:
    """The change event an outbox row holds (an :class:`OutboxEvent` or a row of its table)."""
    return ChangeEvent.from_record(from_payload(row.payload))
