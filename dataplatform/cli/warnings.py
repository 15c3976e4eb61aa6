"""``dataplatform warnings tail``: live warnings in the terminal."""

from __future__ import annotations

import datetime as dt
import json
import time

import typer

from dataplatform.config import get_settings
from dataplatform.product_io.reader import Position, ProductReader
from dataplatform.product_io.serialization import registry_client
from dataplatform.repeats import RepeatFilter
from dataplatform.products.product import get_product

app = typer.Typer(help="Live housing shortfall warnings.", no_args_is_help=True)
COLOURS = {"RED": "red", "AMBER": "yellow", "NONE": "green"}


def _plain(value):
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


@app.command()
def tail(
    from_beginning: bool = typer.Option(False, "--from-beginning", help="Show every transition so far, then follow."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    max_events: int = typer.Option(None, "--max", help="Stop after this many transitions."),
    timeout: float = typer.Option(None, "--timeout", help="Stop after this many seconds."),
    topic: str = typer.Option(None, "--topic", help="Warnings topic [default: the warnings product's topic]."),
) -> None:
    """Print each warning transition as it happens (Ctrl-C stops)."""
    settings = get_settings()
    product = get_product("housing_shortfall_warnings")
    reader = ProductReader({topic or product.topic: product},
                           Position.beginning() if from_beginning else Position.end(),
                           registry=registry_client(settings=settings), name="dataplatform-tail", settings=settings,
                           skip_unreadable=True)
    seen, deadline = 0, (time.monotonic() + timeout) if timeout else None
    repeats = RepeatFilter()   # a transition re-sent after the processor crashed is printed once

    def done() -> bool:
        return (max_events is not None and seen >= max_events) or (deadline is not None and time.monotonic() >= deadline)

    try:
        for record in reader.follow(done):
            if record.value is None or not repeats.first_time(record.topic, record.event_id):
                continue
            w = record.value["after"]
            seen += 1
            if as_json:
                typer.echo(json.dumps({k: _plain(v) for k, v in w.items()}))
            else:
                typer.secho(w["message"], fg=COLOURS.get(w["severity"]))
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()
