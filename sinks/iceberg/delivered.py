"""What the Iceberg sink has delivered, seen from the reading side: which of the products'
tables exist in the catalog, where they are, how many snapshots they have, and their rows
as Arrow.

``dataplatform query`` and the catalogue's product page ask this module; the table names
come from :mod:`dataplatform.sinks.iceberg.names`, so a reader never guesses a name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

from dataplatform.config import Settings
from dataplatform.products.product import DataProduct
from dataplatform.sinks.iceberg.catalog import is_configured, open_catalog
from dataplatform.sinks.iceberg.names import table_names

CURRENT, HISTORY = "current state", "history"


@dataclass(frozen=True, slots=True)
class IcebergTable:
    """One table of a product: ``exists`` False until the sink's first commit."""

    product: str
    kind: str  # CURRENT or HISTORY
    namespace: str
    name: str
    exists: bool = False
    location: str | None = None
    snapshots: int = 0
    current_snapshot_id: int | None = None

    @property
    def relation(self) -> str:
        """``namespace.table``: the name in ``dataplatform query``, Athena and the catalog."""
        return f"{self.namespace}.{self.name}"

    @property
    def identifier(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def expected_tables(product: DataProduct) -> list[IcebergTable]:
    """The two tables the sink delivers for ``product`` (not looked up)."""
    names = table_names(product)
    return [IcebergTable(product.name, CURRENT, names.namespace, names.current),
            IcebergTable(product.name, HISTORY, names.namespace, names.history)]


def describe_tables(catalog: Catalog, product: DataProduct) -> list[IcebergTable]:
    """``product``'s tables as the catalog has them now (location, snapshot count)."""
    out = []
    for expected in expected_tables(product):
        try:
            table = catalog.load_table(expected.identifier)
        except (NoSuchTableError, NoSuchNamespaceError):
            out.append(expected)
            continue
        snapshot = table.current_snapshot()
        out.append(IcebergTable(expected.product, expected.kind, expected.namespace, expected.name, exists=True,
                                location=table.location(), snapshots=len(table.snapshots()),
                                current_snapshot_id=snapshot.snapshot_id if snapshot else None))
    return out


def delivered_tables(catalog: Catalog, products: Iterable[DataProduct]) -> list[IcebergTable]:
    """The products' tables that exist, found with one listing per namespace (a domain)."""
    expected = [t for p in products for t in expected_tables(p)]
    present: set[tuple[str, str]] = set()
    for namespace in sorted({t.namespace for t in expected}):
        try:
            present |= {tuple(identifier[-2:]) for identifier in catalog.list_tables(namespace)}
        except NoSuchNamespaceError:
            continue
    return [IcebergTable(t.product, t.kind, t.namespace, t.name, exists=True)
            for t in expected if t.identifier in present]


def read_arrow(catalog: Catalog, table: IcebergTable) -> pa.Table:
    """All rows of the table's current snapshot (pyiceberg's scan, delete files applied)."""
    return catalog.load_table(table.identifier).scan().to_arrow()


def reading_catalog(settings: Settings) -> Catalog | None:
    """The catalog to read: the configured one, else the embedded one if the sink has made it.

    A reader never creates the embedded catalog: with nothing configured and nothing
    written yet there is no catalog (None)."""
    if not is_configured(settings) and not (settings.dataplatform_home / "iceberg" / "catalog.db").exists():
        return None
    return open_catalog(settings)
