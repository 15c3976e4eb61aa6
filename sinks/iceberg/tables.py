"""Creating a product's two Iceberg tables and evolving them to a new compatible version.

The history table is partitioned by day of the event time (``_ts``), so a question about
a period reads only that period's files; the current-state table is small and not
partitioned, with ``_key`` its identifier field. Both are format version 2, Parquet with
zstd, drop old metadata files as they commit (a table kept for months does not collect
thousands of ``*.metadata.json``), and leave retrying a lost commit race to the sink.

A new compatible version of the product (a new optional field) is merged into the table's
schema by name (``union_by_name``): the columns gain the field, no file is rewritten, old
rows read it as null. An incompatible change is a new major version, so a new table
(:mod:`.names`).
"""

from __future__ import annotations

import logging

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, TableAlreadyExistsError
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema, index_by_name
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform

log = logging.getLogger(__name__)
TABLE_PROPERTIES = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
    "dataplatform.written-by": "dataplatform sink iceberg",
    # the sink retries a commit that lost a race itself, re-reading the offsets it merges;
    # pyiceberg's own retry would re-apply the old snapshot properties on the new metadata
    "commit.retry.num-retries": "0",
}


def history_spec(schema: Schema) -> PartitionSpec:
    return PartitionSpec(PartitionField(source_id=schema.find_field("_ts").field_id, field_id=1000,
                                        transform=DayTransform(), name="_ts_day"))


def ensure_table(catalog: Catalog, identifier: tuple[str, str], schema: Schema, history: bool,
                 description: str = "") -> Table:
    """Load the table, creating its namespace and itself when missing, and merge in any
    field of ``schema`` it lacks."""
    namespace = identifier[0]
    try:
        catalog.create_namespace_if_not_exists(namespace)
    except NamespaceAlreadyExistsError:   # created by another instance between the check and the create
        pass
    if not catalog.table_exists(identifier):
        properties = {**TABLE_PROPERTIES, "comment": description} if description else dict(TABLE_PROPERTIES)
        try:
            table = catalog.create_table(identifier, schema, partition_spec=history_spec(schema) if history
                                         else PartitionSpec(), properties=properties)
            log.info("created Iceberg table %s at %s", ".".join(identifier), table.location())
            return table
        except TableAlreadyExistsError:
            pass
    table = catalog.load_table(identifier)
    if table.properties.get("commit.retry.num-retries") != "0":   # a table created by an older sink or a tool
        with table.transaction() as txn:
            txn.set_properties({"commit.retry.num-retries": "0"})
    return evolve(table, schema)


def missing_fields(table: Table, schema: Schema) -> list[str]:
    """Names (dotted for nested fields) that ``schema`` has and the table does not."""
    have = set(index_by_name(table.schema()))
    return sorted(name for name in index_by_name(schema) if name not in have)


def evolve(table: Table, schema: Schema) -> Table:
    """Add what ``schema`` has and the table lacks, in place (a compatible new version)."""
    new = missing_fields(table, schema)
    if new:
        with table.update_schema() as update:
            update.union_by_name(schema)
        log.info("Iceberg table %s gained %s", ".".join(table.name()), ", ".join(new))
    return table
