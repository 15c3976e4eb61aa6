"""How to use a product's data: everything a consumer or analyst copies from its page.

The topic, registry subject and key; an example of the change event a consumer receives;
a ``dataplatform consume`` command; the SQL tables and Parquet files the sinks keep, and
a ``dataplatform query`` over them; a Python consumer. All names come from the modules
that own them (product, SQL tables, Parquet layout), so the page cannot drift from them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dataplatform.products.product import DataProduct
from dataplatform.sinks.parquet_files import product_glob
from dataplatform.sinks.sql.tables import APPEND, UPSERT, table_name

_EXAMPLES = {"string": "…", "int": 0, "long": 0, "float": 0.0, "double": 0.0, "boolean": False, "bytes": "…"}
_LOGICAL = {"timestamp-millis": "2026-01-01T09:30:00+00:00", "date": "2026-01-01", "decimal": "0.00", "uuid": "…"}


def example_value(avro_type, personal: bool = False):  # noqa: ANN001 - any Avro type
    """A placeholder value of an Avro type, as a consumer's deserializer returns it."""
    if personal:
        return "<personal: only for consumers allowed it>"
    if isinstance(avro_type, list):
        branches = [b for b in avro_type if b != "null"]
        return example_value(branches[0]) if branches else None
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") in _LOGICAL:
            return _LOGICAL[avro_type["logicalType"]]
        kind = avro_type.get("type")
        if kind == "enum":
            return avro_type["symbols"][0]
        if kind == "array":
            return [example_value(avro_type["items"])]
        if kind == "map":
            return {"key": example_value(avro_type["values"])}
        if kind == "record":
            return {f["name"]: example_value(f["type"]) for f in avro_type["fields"]}
        return example_value(kind)
    return _EXAMPLES.get(avro_type, "…")


def example_event(product: DataProduct) -> str:
    """The envelope of an update event around a placeholder entity, as JSON (dates and
    times written as ISO text; a deserializer gives date and datetime objects)."""
    after = {f["name"]: example_value(f["type"], f["name"] in product.personal_fields) for f in product.entity_fields()}
    event = {"op": "u", "before": {"…": "the entity before the change"}, "after": after, "ts_ms": _LOGICAL["timestamp-millis"],
             "source": {"system": product.manifest.producingService or "the producing service",
                        "event_id": "5f0c…", "position": 42},
             "transaction": None}
    return json.dumps(event, indent=2, ensure_ascii=False)


@dataclass
class Usage:
    topic: str
    subject: str
    key: str
    consume_command: str
    sql_table: str
    sql_history_table: str
    parquet_path: str
    query_commands: list[str]
    python: str
    example_event: str


def usage(product: DataProduct, *, registry_url: str, bootstrap: str | None, parquet_root: str) -> Usage:
    key = " | ".join(product.manifest.keyFields)
    table = table_name(product.topic, UPSERT)
    return Usage(
        topic=product.topic, subject=product.value_subject, key=key,
        consume_command=f"dataplatform consume {product.topic} --from-beginning --max 10",
        sql_table=table, sql_history_table=table_name(product.topic, APPEND),
        parquet_path=product_glob(parquet_root, product.name),
        query_commands=[f'dataplatform query "SELECT * FROM {table} LIMIT 10"',
                        f'dataplatform query "SELECT date, count(*) AS events FROM parquet.{product.name} '
                        f'GROUP BY date ORDER BY date"'],
        python=_python_snippet(product, registry_url, bootstrap), example_event=example_event(product))


def _python_snippet(product: DataProduct, registry_url: str, bootstrap: str | None) -> str:
    return f'''from confluent_kafka import DeserializingConsumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import StringDeserializer

registry = SchemaRegistryClient({{"url": "{registry_url}"}})
consumer = DeserializingConsumer({{
    "bootstrap.servers": "{bootstrap or 'your-kafka:9092'}",
    "group.id": "my-team-{product.name.replace('_', '-')}",
    "auto.offset.reset": "earliest",
    "key.deserializer": StringDeserializer("utf_8"),
    "value.deserializer": AvroDeserializer(registry),
}})
consumer.subscribe(["{product.topic}"])
while True:
    msg = consumer.poll(1.0)
    if msg is None or msg.error():
        continue
    event = msg.value()            # None for a tombstone (the entity was deleted)
    if event is not None:
        print(msg.key(), event["op"], event["after"] or event["before"])'''
