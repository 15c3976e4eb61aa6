"""``dataplatform run``: the platform's main job, end to end."""

from __future__ import annotations

import signal
import threading

import typer

from dataplatform.config import get_settings
from dataplatform.kafka.broker import BrokerError
from dataplatform.kafka.provider import kafka_bootstrap


def run(
    fresh: bool = typer.Option(False, "--fresh", help="Start over: delete the local state first."),
    duration: float = typer.Option(None, "--duration", help="Stop by itself after this many seconds."),
) -> None:
    """Bring up the platform and keep it running until Ctrl-C (or --duration)."""
    import shutil

    settings = get_settings()
    if fresh:
        shutil.rmtree(settings.dataplatform_home, ignore_errors=True)
    settings.dataplatform_home.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with kafka_bootstrap() as bootstrap:
            typer.echo(f"Kafka           {bootstrap}")
            typer.echo(f"State           {settings.dataplatform_home.resolve()}")
            typer.echo("Running. Press Ctrl-C to stop.")
            try:
                stop.wait(duration)
            except KeyboardInterrupt:
                pass
            typer.echo("Stopping...")
    except BrokerError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(1)
