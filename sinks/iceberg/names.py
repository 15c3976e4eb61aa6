"""Where a data product lives in an Iceberg catalog: one namespace per domain (a Glue
database on the Analytical Platform), two tables per product major version.

The sink, ``dataplatform query`` and the catalogue page all ask this module, so a table is
never named twice in two ways.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataplatform.products.product import DataProduct


@dataclass(frozen=True, slots=True)
class TableNames:
    """The Iceberg identifiers of one product version (namespace, table)."""

    namespace: str
    history: str
    current: str

    @property
    def history_identifier(self) -> tuple[str, str]:
        return (self.namespace, self.history)

    @property
    def current_identifier(self) -> tuple[str, str]:
        return (self.namespace, self.current)


def table_names(product: DataProduct) -> TableNames:
    """``hmpps.prison_releases_housing_need.v1`` is namespace ``hmpps`` with the tables
    ``prison_releases_housing_need_v1_history`` (every change event) and
    ``prison_releases_housing_need_v1`` (one row per entity, as it is now)."""
    base = f"{product.name}_v{product.manifest.major}"
    return TableNames(namespace=str(product.manifest.domain).lower(), history=f"{base}_history", current=base)
