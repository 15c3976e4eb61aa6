"""``dataplatform outbox init|relay|status``: a service's transactional outbox, run by its team.

The service writes each change into the outbox table in the same transaction as its
business rows; ``relay`` publishes the rows to the data products' topics; ``status`` says
what waits. Guide: docs/outbox.md.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
from pathlib import Path

import typer
from rich.console import Console

from dataplatform.cli.long_running import serve_metrics_or_exit, stop_on_signals
from dataplatform.cli.tables import print_fitted
from dataplatform.config import get_settings, shown_url

app = typer.Typer(help="The transactional outbox of a service: create its table, relay its rows to Kafka, "
                       "see what waits (guide: docs/outbox.md).", no_args_is_help=True)
console = Console(highlight=False)
log = logging.getLogger("dataplatform.outbox")

DatabaseUrl = typer.Option(None, "--database-url", "-d", show_default="OUTBOX_DATABASE_URL",
                           help="SQLAlchemy URL of the service's own database, e.g. "
                                "postgresql+psycopg://svc@db/housing or sqlite:///housing.db.")
TableName = typer.Option(None, "--table", show_default="OUTBOX_TABLE or outbox_events",
                         help="The outbox table (table or schema.table).")
ProductsRoot = typer.Option(None, "--products-root", help="Folder of <domain>/<name>/ products (default: schemas/).")


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(code)


def _target(database_url: str | None, table: str | None) -> tuple[str, str]:
    settings = get_settings()
    url = database_url or settings.outbox_database_url
    if not url:
        _fail("no database: pass --database-url (or set OUTBOX_DATABASE_URL) with the service's own database, "
              "e.g. --database-url sqlite:///housing.db", 2)
    return url, table or settings.outbox_table  # type: ignore[return-value]


def _engine(url: str):  # noqa: ANN202 - a SQLAlchemy Engine
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:  # pre-ping: a connection the database dropped while it was down is replaced, not used
        return create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ModuleNotFoundError) as exc:
        _fail(f"cannot use database URL {shown_url(url)}: {exc} (PostgreSQL needs `pip install "
              "'dataplatform[postgres]'`)", 2)


def _require_table(engine, url: str, table: str) -> None:  # noqa: ANN001
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from dataplatform.outages import reason_of

    schema, _, name = table.rpartition(".")
    try:
        present = inspect(engine).has_table(name, schema=schema or None)
    except SQLAlchemyError as exc:
        _fail(f"cannot reach the database {shown_url(url)}: {reason_of(exc)}")
    if not present:
        _fail(f"no table {table} in {shown_url(url)}: create it with `dataplatform outbox init --database-url ... "
              f"--table {table}`, or apply the SQL `dataplatform outbox init --sql` prints", 2)


@app.command("init", epilog="Example: dataplatform outbox init --database-url postgresql+psycopg://svc@db/housing  "
                            "·  for a migration tool: dataplatform outbox init -d sqlite:///housing.db --sql > V7__outbox.sql")
def init(database_url: str = DatabaseUrl, table: str = TableName,
         sql: bool = typer.Option(False, "--sql", help="Print the CREATE statements for this database instead "
                                                       "(for Flyway, Liquibase, Alembic...); connects to nothing."),
         ) -> None:
    """Create the outbox table in the service's database (PostgreSQL, SQLite), unless it exists."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from dataplatform.outages import reason_of
    from dataplatform.producers.outbox import create_outbox_table, outbox_ddl

    url, table = _target(database_url, table)
    if sql:
        typer.echo(outbox_ddl(url, table), nl=False)
        return
    engine = _engine(url)
    schema, _, name = table.rpartition(".")
    try:
        existed = inspect(engine).has_table(name, schema=schema or None)
        create_outbox_table(engine, table)
    except SQLAlchemyError as exc:
        _fail(f"cannot create {table} in {shown_url(url)}: {reason_of(exc)}")
    finally:
        engine.dispose()
    typer.echo(f"table {table} {'already exists' if existed else 'created'} in {shown_url(url)}")


@app.command("relay", epilog="Example: OUTBOX_DATABASE_URL=postgresql+psycopg://relay@db/housing dataplatform outbox "
                             "relay --product social_housing_availability --instance-id housing-relay --metrics-port 9109")
def relay(
    database_url: str = DatabaseUrl, table: str = TableName,
    product: list[str] = typer.Option([], "--product", "-p",
                                      help="Relay the rows of this data product (repeat for several); rows of "
                                           "others wait. Given products are checked with the registry at start. "
                                           "Default: every product that has rows."),
    topic: str = typer.Option(None, "--topic", help="Publish to this topic instead of the product's own (one "
                                                    "--product only; for tests and demos)."),
    batch_size: int = typer.Option(500, "--batch-size", min=1, help="Rows read, published and marked sent together."),
    poll_interval: float = typer.Option(0.2, "--poll-interval", min=0.01,
                                        help="Seconds between reads when nothing waits (also the longest a new row "
                                             "waits before the relay sees it)."),
    instance_id: str = typer.Option(None, "--instance-id", show_default="outbox-relay-<host>",
                                    help="This relay's name in logs, metrics and the Kafka client id; keep it the "
                                         "same across restarts."),
    metrics_port: int = typer.Option(None, "--metrics-port", help="Serve Prometheus metrics (lag, rows published, "
                                                                  "outages) on this port at /metrics (needs "
                                                                  "API_READ_TOKEN or API_WRITE_TOKEN once "
                                                                  "API_READ_TOKEN is set)."),
    report_every: float = typer.Option(60.0, "--report-every", min=1, help="Log rows published and lag this often "
                                                                           "(seconds) while there is work."),
    products_root: Path = ProductsRoot,
) -> None:
    """Publish the outbox table's rows to their data products' topics, in id order, until Ctrl-C or SIGTERM.

    Run one per database. Rows are marked sent once the broker acknowledged them; after a
    crash the unmarked ones are sent again, identical. While the database or the broker is
    down it retries every second, logging when the outage starts and when it ends.
    """
    from dataplatform.kafka.connection import KafkaConnectionError
    from dataplatform.producers.outbox_relay import OutboxRelay
    from dataplatform.producers.publisher import Publisher, PublisherError
    from dataplatform.products.product import load_products

    url, table = _target(database_url, table)
    settings = get_settings()
    if not settings.kafka_bootstrap_servers or not settings.schema_registry_url:
        _fail("the relay publishes to Kafka through a schema registry: set KAFKA_BOOTSTRAP_SERVERS and "
              "SCHEMA_REGISTRY_URL (docs/outbox.md)", 2)
    products = load_products(products_root) if products_root else load_products()
    unknown = sorted(set(product) - set(products))
    if unknown:
        _fail(f"no data product named {', '.join(unknown)}; known: {', '.join(sorted(products))}", 2)
    if topic and len(product) != 1:
        _fail("--topic needs exactly one --product (it replaces that product's topic)", 2)
    name = instance_id or f"outbox-relay-{socket.gethostname()}"
    engine = _engine(url)
    _require_table(engine, url, table)

    def publisher(p):  # noqa: ANN001, ANN202
        return Publisher(p, source_system=name, settings=settings, topic=topic,
                         producer_config={"client.id": name})

    relay = OutboxRelay(engine, publisher_factory=publisher, products=products, table=table, only=product or None,
                        batch_size=batch_size, name=name, create_table=False, report_every=report_every)
    try:
        for p in product:  # a broker, registry or schema problem stops the relay now, not at the first row
            relay.publisher_for(p)
    except (PublisherError, KafkaConnectionError) as exc:
        relay.close()
        _fail(f"cannot start the relay: {exc}")
    stop = stop_on_signals()
    metrics = serve_metrics_or_exit(metrics_port, settings, relay.close) if metrics_port else ""
    log.info("outbox relay %s: table %s in %s, products %s, batch %d, poll %.2f s%s", name, table, shown_url(url),
             ", ".join(product) or "all", batch_size, poll_interval, f", {metrics}" if metrics else "")
    try:
        relay.run_forever(stop, poll_interval)
    finally:
        try:
            relay.close()
        except PublisherError as exc:  # the broker is down as we stop: those rows were never marked sent
            log.warning("outbox relay %s: stopping with events unacknowledged; their rows stay unsent and go out at "
                        "the next start: %s", name, exc)
        engine.dispose()
    log.info("outbox relay %s: stopped after publishing %d rows", name, relay.published)


@app.command("status", epilog="Example: dataplatform outbox status --database-url sqlite:///housing.db --json")
def status(database_url: str = DatabaseUrl, table: str = TableName,
           as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Per product: rows waiting, how long the oldest has waited, when a row was last published."""
    from sqlalchemy.exc import SQLAlchemyError

    from dataplatform.outages import reason_of
    from dataplatform.producers.outbox_status import outbox_status

    url, table = _target(database_url, table)
    engine = _engine(url)
    _require_table(engine, url, table)
    try:
        lines = outbox_status(engine, table)
    except SQLAlchemyError as exc:
        _fail(f"cannot read {table} in {shown_url(url)}: {reason_of(exc)}")
    finally:
        engine.dispose()
    now = dt.datetime.now(dt.UTC)
    if as_json:
        typer.echo(json.dumps({"table": table, "at": now.isoformat(), "products": [b.to_dict(now) for b in lines]},
                              indent=2))
        return
    if not lines:
        console.print(f"{table} is empty: no service has written a change yet")
        return
    rows = [(b.product, str(b.waiting), "" if b.oldest_waiting is None else f"{b.oldest_waiting_age(now):.1f} s ago",
             b.last_published.strftime("%Y-%m-%d %H:%M:%S UTC") if b.last_published else "never", str(b.published))
            for b in lines]
    print_fitted(console, ("product", "waiting", "oldest waiting", "last published", "published"), rows,
                 whole=("product",), drop_order=("published", "last published"))
