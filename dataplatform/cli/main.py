"""Entry point of the ``dataplatform`` console script.

Each command group lives in its own module and is mounted here, so ``--help`` at every
level lists what exists.
"""

from __future__ import annotations

import logging
import sys

import httpx
import typer

from dataplatform import __version__
from dataplatform.cli import bridge as bridge_cli
from dataplatform.cli import kafka as kafka_cli
from dataplatform.cli import registry as registry_cli
from dataplatform.cli import products as products_cli
from dataplatform.cli import run as run_cli
from dataplatform.cli import process as process_cli
from dataplatform.cli import simulate as simulate_cli
from dataplatform.cli import consume as consume_cli
from dataplatform.cli import derivations as derivations_cli
from dataplatform.cli import query as query_cli
from dataplatform.cli import sink as sink_cli
from dataplatform.cli import topics as topics_cli
from dataplatform.cli import outbox as outbox_cli
from dataplatform.cli import warnings as warnings_cli
from dataplatform.cli.help_format import quiet_flag_types
from dataplatform.registry_config import RegistryConfigError

try:   # confluent-kafka's registry client speaks through its own copy of httpx
    from httpx2 import TransportError as RegistryTransportError
except ImportError:  # pragma: no cover - older confluent-kafka
    RegistryTransportError = httpx.TransportError

quiet_flag_types()

app = typer.Typer(
    name="dataplatform",
    help="Event-driven data platform: data products on Kafka, joins, warnings, sinks, catalogue.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
app.add_typer(kafka_cli.app, name="kafka")
app.command("process")(process_cli.process)
app.add_typer(registry_cli.app, name="registry")
app.add_typer(products_cli.products_app, name="products")
app.add_typer(products_cli.schemas_app, name="schemas")
app.add_typer(derivations_cli.app, name="derivations")
app.command("run")(run_cli.run)
app.add_typer(simulate_cli.app, name="simulate")
app.command("consume")(consume_cli.consume)
app.add_typer(sink_cli.app, name="sink")
app.add_typer(topics_cli.app, name="topics")
app.add_typer(outbox_cli.app, name="outbox")
app.add_typer(bridge_cli.app, name="bridge")
app.command("query")(query_cli.query)
app.add_typer(warnings_cli.app, name="warnings")
app.command("serve", help="Serve the web service: registry, catalogue, live warnings, API docs.")(registry_cli.serve)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dataplatform {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Event-driven data platform: data products on Kafka, joins, warnings, sinks, catalogue."""
    # The platform's own INFO lines say what happened; a library's (httpx's "HTTP Request: …")
    # only with --verbose. Long-running commands send everything to their log file instead.
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("dataplatform").setLevel(logging.DEBUG if verbose else logging.INFO)


def console_script() -> None:
    """``dataplatform``: an unusable address, or a service that cannot be reached, is one line
    of error and exit status 2, not a traceback (``--verbose`` shows the traceback)."""
    try:
        app()
    except (RegistryConfigError, httpx.TransportError, RegistryTransportError) as exc:
        if {"--verbose", "-v"} & set(sys.argv):
            raise
        where = _url_of(exc)
        typer.echo(f"error: {exc}" + (f" (connecting to {where})" if where else ""), err=True)
        sys.exit(2)


def _url_of(exc: Exception) -> str | None:
    try:
        url = exc.request.url   # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):   # httpx raises RuntimeError when no request is attached
        return None
    return str(url.copy_with(query=None, username=None, password=None))
