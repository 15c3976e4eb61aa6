"""A product's Iceberg tables on its catalogue page: their names, where they are, how many
snapshots they have, and queries to start from (DuckDB through ``dataplatform query``, and
Athena on the Analytical Platform).

The page never fails because of the catalog, nor waits long for it: a catalog that cannot
be reached, or does not answer within ``ANSWER_WITHIN_S``, is shown as such, with the table
names the sink will use (they come from the product, not the catalog).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as NoAnswer
from dataclasses import dataclass, field

from dataplatform.config import Settings
from dataplatform.products.product import DataProduct
from dataplatform.sinks.iceberg.delivered import IcebergTable, describe_tables, expected_tables, reading_catalog

ANSWER_WITHIN_S = 3.0
# pyiceberg's REST client waits for as long as the server takes: ask on a worker thread and
# stop waiting at the deadline (a hung request then holds one worker, never a page).
_lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="catalogue-iceberg")


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
        tables = _lookups.submit(_look_up, settings, product).result(timeout=ANSWER_WITHIN_S) or tables
    except NoAnswer:
        error = f"no answer within {ANSWER_WITHIN_S:g} s"
    except Exception as exc:  # noqa: BLE001 - unreachable, misconfigured or refusing: the page still renders
        error = f"{type(exc).__name__}: {exc}"
    current, history = tables
    return IcebergDelivery(tables, settings.iceberg_catalog, error, duckdb=[
        f'dataplatform query "SELECT * FROM {current.relation} LIMIT 10"',
        f'dataplatform query "SELECT count(*) AS changes FROM {history.relation}"',
    ], athena=athena_queries(current, history))


def _look_up(settings: Settings, product: DataProduct) -> list[IcebergTable] | None:
    catalog = reading_catalog(settings)
    return describe_tables(catalog, product) if catalog is not None else None


def athena_queries(current: IcebergTable, history: IcebergTable) -> list[str]:
    """Athena names a table ``"database"."table"`` (the namespace is the Glue database)."""
    out = [f'SELECT * FROM "{current.namespace}"."{current.name}" LIMIT 10;',
           f'SELECT count(*) AS changes FROM "{history.namespace}"."{history.name}";']
    if history.current_snapshot_id is not None:
        out.append(f'SELECT count(*) AS changes FROM "{history.namespace}"."{history.name}" '
                   f"FOR VERSION AS OF {history.current_snapshot_id};  -- time travel to a snapshot")
    return out
