"""``dataplatform query "SQL"``: ask the sink tables, Parquet files and Iceberg tables a question
from the terminal.

Runs in-process with DuckDB (:mod:`dataplatform.sinks.query`): SQL tables by their names, Parquet files
as ``parquet.<product>``, Iceberg tables as ``<domain>.<product>_v<major>`` and ``..._history``. Prints a table, or ``--json`` / ``--csv`` for scripts and
spreadsheets. A query that fails says why, lists what can be queried, and exits 1.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dataplatform.cli.tables import print_fitted
from dataplatform.config import get_settings

console = Console()


def _json_value(value: object) -> object:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def query(
    sql: str = typer.Argument(None, help="The SQL to run, e.g. \"SELECT * FROM parquet.area_supply_demand LIMIT 5\"."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of objects, one per row."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV with a header row."),
    tables: bool = typer.Option(False, "--tables",
                                help="List the SQL tables, Parquet views and Iceberg tables with their columns."),
    database_url: str = typer.Option(None, "--database-url",
                                     help="The SQL sink's database (default: DATABASE_URL, else DATAPLATFORM_HOME/"
                                          "analytics.db as `dataplatform run` writes, else DATAPLATFORM_HOME/dataplatform.db)."),
    parquet_path: str = typer.Option(None, "--parquet-path",
                                     help="The Parquet sink's folder or fsspec URL (default: DATAPLATFORM_HOME/parquet)."),
    products_root: Path = typer.Option(None, "--products-root", help="Folder of <domain>/<name>/ products (default: schemas/)."),
) -> None:
    """Run SQL over the sink tables, Parquet files and Iceberg tables with DuckDB, in-process.

    SQL tables keep their names (platforms__area_supply_demand__v1); each product's Parquet
    files are the view parquet.<product> (parquet.area_supply_demand), with a date column;
    the Iceberg sink's tables are <domain>.<product>_v<major> (one row per entity) and
    <domain>.<product>_v<major>_history (every change), as Athena names them, read from the
    catalog ICEBERG_CATALOG names in pyiceberg's configuration, else the embedded one.

    Example: dataplatform query "SELECT count(*) FROM platforms.area_supply_demand_v1" --json"""
    from dataplatform.products.product import load_products
    from dataplatform.sinks.iceberg.delivered import reading_catalog
    from dataplatform.sinks.query import AnalystQuery, QueryError, default_database_url

    if as_json and as_csv:
        _fail("choose one of --json and --csv")
    if not sql and not tables:
        _fail("no query: pass SQL in quotes, e.g. dataplatform query \"SELECT count(*) FROM parquet.area_supply_demand\", "
              "or --tables to see what there is")
    settings = get_settings()
    url = default_database_url(settings.dataplatform_home, database_url or settings.database_url)
    path = parquet_path or str((settings.dataplatform_home / "parquet").resolve())
    try:
        products = load_products(products_root) if products_root else load_products()
        with AnalystQuery(url, path, products.values(), iceberg=lambda: reading_catalog(settings)) as engine:
            if engine.iceberg_problem:
                typer.secho(f"warning: {engine.iceberg_problem}", err=True, fg="yellow")
            if tables:
                _print_sources(engine.sources(), as_json)
                return
            result = engine.run(sql)
    except QueryError as exc:
        _fail(f"the query failed: {exc}")
    except Exception as exc:  # noqa: BLE001 - a database or path that cannot be read
        _fail(f"cannot read the sink data ({url or 'no SQL database'}, {path}): {exc}. "
              "Check --database-url / DATABASE_URL and --parquet-path.")
    if as_json:
        typer.echo(json.dumps([dict(zip(result.columns, row)) for row in result.rows], default=_json_value, indent=2))
    elif as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        table = Table(*result.columns)
        for row in result.rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        console.print(table)
        console.print(f"{len(result.rows)} row{'s' if len(result.rows) != 1 else ''}", style="dim")


def _print_sources(sources, as_json: bool) -> None:  # noqa: ANN001
    if as_json:
        typer.echo(json.dumps([vars(s) for s in sources], indent=2))
        return
    if not sources:
        console.print("nothing to query yet: no sink table, Parquet file or Iceberg table (has a sink run?)")
        return
    print_fitted(console, ("name", "kind", "where", "columns"),
                 [(s.name, s.kind, s.where, ", ".join(s.columns)) for s in sources],
                 whole=("name",), drop_order=("where", "kind"))


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(1)
