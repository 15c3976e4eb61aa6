"""``dataplatform warnings tail``: live warnings in the terminal."""

from __future__ import annotations

import datetime as dt
import json

import typer
from confluent_kafka import Consumer

from dataplatform.config import get_settings
from dataplatform.kafka_config import consumer_config
from dataplatform.repeats import RepeatFilter
from dataplatform.product_io.serialization import ProductSerde, registry_client
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
    import time
    import uuid

    settings = get_settings()
    product = get_product("housing_shortfall_warnings")
    serde = ProductSerde(product, registry_client(settings=settings), auto_register=False)
    consumer = Consumer(consumer_config(f"dataplatform-tail-{uuid.uuid4().hex[:8]}",
                                        **{"auto.offset.reset": "earliest" if from_beginning else "latest"}))
    consumer.subscribe([topic or product.topic])
    seen, deadline = 0, (time.monotonic() + timeout) if timeout else None
    repeats = RepeatFilter()   # a transition re-sent after the processor crashed is printed once
    try:
        while (max_events is None or seen < max_events) and (deadline is None or time.monotonic() < deadline):
            msg = consumer.poll(0.5)
            if msg is None or msg.error() or msg.value() is None:
                continue
            event = serde.deserialize_value(msg.value(), msg.topic())
            if not repeats.first_time(msg.topic(), event["source"]["event_id"]):
                continue
            w = event["after"]
            seen += 1
            if as_json:
                typer.echo(json.dumps({k: _plain(v) for k, v in w.items()}))
            else:
                typer.secho(w["message"], fg=COLOURS.get(w["severity"]))
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
