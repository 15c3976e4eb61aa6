"""``dataplatform kafka``: start, stop and inspect the embedded Apache Kafka broker."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from dataplatform.config import get_settings
from dataplatform.kafka import BrokerError, EmbeddedKafka
from dataplatform.kafka.jars import JarResolutionError, resolve_jars

app = typer.Typer(help="Run the embedded Apache Kafka broker (KRaft, from Maven Central jars).", no_args_is_help=True)

DataDir = typer.Option(None, "--data-dir", help="Broker data dir [default: $DATAPLATFORM_HOME/kafka].")


def _broker(data_dir: Path | None, port: int | None = None, owned: bool = False) -> EmbeddedKafka:
    return EmbeddedKafka(data_dir or get_settings().kafka_data_dir, port=port, owned=owned)


@app.command()
def start(
    data_dir: Path = DataDir,
    port: int = typer.Option(None, "--port", help="Client port [default: a free port, kept across restarts]."),
    foreground: bool = typer.Option(False, "--foreground", help="Stay attached; Ctrl-C stops the broker."),
    timeout: float = typer.Option(90.0, "--timeout", help="Seconds to wait for the broker to answer."),
) -> None:
    """Start the broker in the background and print its bootstrap address once it answers."""
    broker = _broker(data_dir, port)
    try:
        if foreground:
            typer.echo(f"Kafka on {broker.bootstrap_servers} (Ctrl-C to stop)")
        bootstrap = broker.start(timeout=timeout, foreground=foreground)
    except (BrokerError, JarResolutionError) as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(1)
    if not foreground:
        typer.echo(bootstrap)
        typer.echo(f"export KAFKA_BOOTSTRAP_SERVERS={bootstrap}", err=True)


@app.command()
def stop(data_dir: Path = DataDir) -> None:
    """Stop the broker that owns DATA_DIR (gracefully, then forcibly after a minute)."""
    broker = _broker(data_dir)
    if broker.stop():
        typer.echo(f"stopped Kafka in {broker.data_dir}")
    else:
        typer.echo(f"no Kafka running in {broker.data_dir}")


@app.command()
def status(
    data_dir: Path = DataDir,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Say whether the broker of DATA_DIR runs, and where. Exit 1 when it does not."""
    state = _broker(data_dir).status()
    if as_json:
        typer.echo(json.dumps(state))
    elif state["running"]:
        typer.echo(f"running  pid {state['pid']}  {state.get('bootstrap_servers')}  {state['data_dir']}")
    else:
        typer.echo(f"stopped  {state['data_dir']}")
    if not state["running"]:
        raise typer.Exit(1)


@app.command()
def jars() -> None:
    """Resolve Kafka's jars from Maven Central into the cache and print the folder."""
    settings = get_settings()
    try:
        typer.echo(resolve_jars(settings.kafka_version, settings.kafka_jars_dir))
    except JarResolutionError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(1)
