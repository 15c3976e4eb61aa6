"""SQL over what the sinks keep, with DuckDB in-process: the analyst's view of the platform.

- The SQL sink's tables keep their names (``platforms__area_supply_demand__v1``,
  ``..._history``, ``sink_offsets``). DuckDB cannot open SQLite or PostgreSQL here without
  downloading an extension, so the tables a query names are read through SQLAlchemy into
  Arrow and registered with DuckDB (only those: a query costs what it reads).
- The Parquet sink's files are views in the schema ``parquet``, one per product
  (``parquet.area_supply_demand``) over its finished files, with the ``date`` folder as a
  column and columns added by later schema versions filled with NULL in older files.
- The Iceberg sink's tables keep their catalog names, ``<domain>.<product>_v<major>`` (one
  row per entity) and ``..._history`` (every change), as Athena names them: a schema per
  domain. The tables a query names are scanned by pyiceberg into Arrow (only those).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import fsspec
import pyarrow as pa
from pyiceberg.catalog import Catalog
from sqlalchemy import MetaData, Table, create_engine, inspect, select
from sqlalchemy.engine import Engine

from dataplatform.products.product import DataProduct
from dataplatform.sinks.iceberg.delivered import IcebergTable, delivered_tables, read_arrow
from dataplatform.sinks.parquet_files import list_files, product_dir, product_glob

PARQUET_SCHEMA = "parquet"
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class QueryError(ValueError):
    """A query that cannot run, with what to do about it."""


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple]


@dataclass
class Source:
    name: str
    kind: str  # "SQL table", "Parquet files" or "Iceberg table"
    where: str
    columns: list[str]


class AnalystQuery:
    """A DuckDB connection over the sink tables of ``database_url``, the Parquet files under
    ``parquet_path`` and the Iceberg tables of the catalog ``iceberg`` opens (each may be None).

    A catalog that cannot be opened or listed is not fatal: the other sources still answer,
    and :attr:`iceberg_problem` (shown in the hint) says why the Iceberg tables are missing."""

    def __init__(self, database_url: str | None, parquet_path: str | None, products: Iterable[DataProduct],
                 iceberg: Callable[[], Catalog | None] | None = None) -> None:
        self.database_url, self.parquet_path = database_url, parquet_path
        self.products = {p.name: p for p in products}
        self.db = duckdb.connect()
        self.db.execute(f"CREATE SCHEMA {PARQUET_SCHEMA}")
        self._engine: Engine | None = create_engine(database_url) if database_url else None
        self._tables = self._sql_tables()
        self._files = self._parquet_products()
        self.iceberg_problem: str | None = None
        self._catalog: Catalog | None = None
        self._iceberg = self._iceberg_tables(iceberg)
        self._attached_iceberg: set[str] = set()

    def close(self) -> None:
        self.db.close()
        if self._engine is not None:
            self._engine.dispose()

    def __enter__(self) -> "AnalystQuery":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what there is -------------------------------------------------------------
    def _sql_tables(self) -> list[str]:
        if self._engine is None:
            return []
        return sorted(inspect(self._engine).get_table_names())

    def _parquet_products(self) -> dict[str, str]:
        """Product name -> glob of its files, for products with at least one file."""
        if not self.parquet_path:
            return {}
        fs, root = fsspec.core.url_to_fs(self.parquet_path)
        found = {}
        for name in sorted(self.products):
            if list_files(fs, product_dir(root, name)):
                found[name] = product_glob(self.parquet_path.rstrip("/"), name)
        return found

    def _iceberg_tables(self, opener: Callable[[], Catalog | None] | None) -> dict[str, IcebergTable]:
        """``namespace.table`` -> table, for the products' Iceberg tables that exist."""
        if opener is None:
            return {}
        try:
            self._catalog = opener()
            if self._catalog is None:
                return {}
            return {t.relation: t for t in delivered_tables(self._catalog, self.products.values())}
        except Exception as exc:  # noqa: BLE001 - an unreachable or misconfigured catalog
            self.iceberg_problem = f"the Iceberg catalog cannot be read: {exc}"
            return {}

    def sources(self) -> list[Source]:
        """Every table and view a query can name, with its columns."""
        self._attach(self._tables, list(self._files), list(self._iceberg))
        out = []
        for name in self._tables:
            out.append(Source(name, "SQL table", self._where(), self._columns(name)))
        for name, glob in self._files.items():
            out.append(Source(f"{PARQUET_SCHEMA}.{name}", "Parquet files", glob, self._columns(f"{PARQUET_SCHEMA}.{name}")))
        for relation in self._iceberg:
            out.append(Source(relation, "Iceberg table", f"catalog {self._catalog.name}", self._columns(relation)))
        return out

    def _where(self) -> str:
        return self._engine.url.render_as_string(hide_password=True) if self._engine else ""

    def _columns(self, relation: str) -> list[str]:
        return [row[0] for row in self.db.execute(f"DESCRIBE {relation}").fetchall()]

    # -- running ---------------------------------------------------------------------
    def run(self, sql: str) -> Result:
        if not sql.strip():
            raise QueryError("the query is empty: pass SQL, e.g. \"SELECT * FROM parquet.area_supply_demand LIMIT 10\"")
        words = {w.lower() for w in IDENTIFIER.findall(sql)}
        self._attach([t for t in self._tables if t.lower() in words], [p for p in self._files if p.lower() in words],
                     [r for r, t in self._iceberg.items() if t.name.lower() in words and t.namespace.lower() in words])
        try:
            cursor = self.db.execute(sql)
        except duckdb.Error as exc:
            raise QueryError(f"{exc}\n{self.hint()}") from None
        if cursor.description is None:
            return Result([], [])
        return Result([d[0] for d in cursor.description], cursor.fetchall())

    def hint(self) -> str:
        tables = ", ".join(self._tables) or f"none in {self._where() or 'no database'}"
        views = ", ".join(f"{PARQUET_SCHEMA}.{p}" for p in self._files) or f"none under {self.parquet_path or 'no path'}"
        iceberg = ", ".join(self._iceberg) or self.iceberg_problem or "none delivered yet"
        return (f"SQL tables: {tables}\nParquet views: {views}\nIceberg tables: {iceberg}\n"
                "(`dataplatform query --tables` lists their columns)")

    def _attach(self, tables: list[str], products: list[str], iceberg: list[str]) -> None:
        attached = {r[0] for r in self.db.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        attached |= {r[0] for r in self.db.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        for name in tables:
            if name not in attached:
                self.db.register(name, self._read_table(name))
        for name in products:
            if name not in attached:
                glob = self._files[name].replace("'", "''")
                self.db.execute(f"CREATE VIEW {PARQUET_SCHEMA}.{name} AS SELECT * FROM read_parquet('{glob}', "
                                "hive_partitioning = true, union_by_name = true)")
        for relation in iceberg:
            if relation not in self._attached_iceberg:
                table = self._iceberg[relation]
                self.db.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.namespace}"')
                self.db.register("iceberg_scan", read_arrow(self._catalog, table))
                self.db.execute(f'CREATE TABLE "{table.namespace}"."{table.name}" AS SELECT * FROM iceberg_scan')
                self.db.unregister("iceberg_scan")
                self._attached_iceberg.add(relation)

    def _read_table(self, name: str) -> pa.Table:
        table = Table(name, MetaData(), autoload_with=self._engine)
        with self._engine.connect() as conn:
            rows = conn.execute(select(table)).all()
        return pa.table({c.name: pa.array([_plain(r[i]) for r in rows]) for i, c in enumerate(table.columns)}) \
            if rows else pa.table({c.name: pa.array([], pa.string()) for c in table.columns})


def _plain(value: Any) -> Any:
    """Values Arrow takes as they are; JSON columns (lists, dicts) as JSON text."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return value


def default_database_url(home: Path, database_url: str | None) -> str | None:
    """Where the SQL sink tables are: DATABASE_URL, else the SQLite file `dataplatform run`
    writes (analytics.db), else the one `dataplatform sink sql` writes by default."""
    if database_url:
        return database_url
    for name in ("analytics.db", "dataplatform.db"):
        if (home / name).exists():
            return f"sqlite:///{(home / name).resolve()}"
    return None
