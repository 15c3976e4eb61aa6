"""The SQL sink under test: its settings, a test product with its own topic, and what the
sink wrote (a table's rows, a group's stored offsets) read back from the database."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData, Table, create_engine, inspect, select

from dataplatform.config import Settings
from dataplatform.products.product import DataProduct
from tests.support.kafka import create_topic
from tests.support.sending import ChangeSender
from tests.support.sinks import entity, make_product


def rows_of(url: str, name: str) -> list[dict]:
    """Every row of table ``name`` (none while the sink has not created it)."""
    engine = create_engine(url)
    try:
        if not inspect(engine).has_table(name):
            return []
        table = Table(name, MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(table))]
    finally:
        engine.dispose()


def offsets_of(url: str, group: str) -> list[dict]:
    return [r for r in rows_of(url, "sink_offsets") if r["group_id"] == group]


def settings(bootstrap: str, registry: str, **kw) -> Settings:
    return Settings(kafka_bootstrap_servers=bootstrap, schema_registry_url=registry, **kw)


def new_topic_product(tmp_path: Path, bootstrap: str, partitions: int = 1, **kw) -> DataProduct:
    product = make_product(tmp_path / "products", **kw)
    create_topic(bootstrap, product.topic, partitions=partitions)
    return product


def product_with_cases(tmp_path: Path, bootstrap: str, registry: str,
                       cases: int = 3) -> tuple[DataProduct, ChangeSender]:
    """A test product on a new topic, with ``cases`` created (case-0, case-1, ...) and its
    sender, to send more; nothing flushed yet."""
    product = new_topic_product(tmp_path, bootstrap)
    pub = ChangeSender(bootstrap, registry, product)
    for i in range(cases):
        pub.change("c", None, entity(i, 0))
    return product, pub
