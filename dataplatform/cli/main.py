"""Entry point of the ``dataplatform`` console script.

Each command group lives in its own module and is mounted here, so ``--help`` at every
level lists what exists.
"""

from __future__ import annotations

import logging

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
from dataplatform.cli import warnings as warnings_cli
from dataplatform.cli.help_format import quiet_flag_types

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
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
