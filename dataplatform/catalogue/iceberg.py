"""A product's Iceberg tables on its catalogue page: their names, where they are, how many
snapshots they have, and queries to start from (DuckDB through ``dataplatform query``, and
Athena on the Analytical Platform).

The page never fails because of the catalog: a catalog that cannot be reached is shown as
such, with the table names the sink will use (they come from the product, not the catalog).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dataplatform.config import Settings
from dataplatform.products.product import DataProduct
from dataplatform.sinks.iceberg.delivered import IcebergTable, describe_tables, expected_tables, reading_catalog


@dataclass
class IcebergDelivery:
    tables: list[IcebergTable]
    catalog: str
    error: str | None = None
    duckdb: list[str] = field(default_factory=list)
    athena: list[str] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return any(t.exists for t in self.tables)


def iceberg_delivery(settings: Settings, product: DataProduct) -> IcebergDelivery:
    """What the catalog says of ``product``'s tables now, or why it cannot say."""
    tables, error = expected_tables(product), None
    try:
        catalog = reading_catalog(settings)
        if catalog is not None:
            tables = describe_tables(catalog, product)
    except Exception as exc:  # noqa: BLE001 - unreachable, misconfigured or refusing: the page still renders
        error = f"{type(exc).__name__}: {exc}"
    current, history = tables
    return IcebergDelivery(tables, settings.iceberg_catalog, error, duckdb=[
        f'dataplatform query "SELECT * FROM {current.relation} LIMIT 10"',
        f'dataplatform query "SELECT count(*) AS changes FROM {history.relation}"',
    ], athena=athena_queries(current, history))


def athena_queries(current: IcebergTable, history: IcebergTable) -> list[str]:
    """Athena names a table ``"database"."table"`` (the namespace is the Glue database)."""
    out = [f'SELECT * FROM "{current.namespace}"."{current.name}" LIMIT 10;',
           f'SELECT count(*) AS changes FROM "{history.namespace}"."{history.name}";']
    if history.current_snapshot_id is not None:
        out.append(f'SELECT count(*) AS changes FROM "{history.namespace}"."{history.name}" '
                   f"FOR VERSION AS OF {history.current_snapshot_id};  -- time travel to a snapshot")
    return out
