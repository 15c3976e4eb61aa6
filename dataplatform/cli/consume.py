"""``dataplatform consume TOPIC``: print a data product's change events, decoded."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from dataplatform.config import get_settings
from dataplatform.product_io.reader import Position, ProductReader, ProductRecord, ReadError
from dataplatform.product_io.serialization import registry_client
from dataplatform.products.envelope import event_id_of
from dataplatform.products.product import DataProduct, load_products
from dataplatform.repeats import RepeatFilter


def product_for_topic(topic: str) -> DataProduct:
    """The data product published on ``topic`` (exactly, or its dead-letter topic)."""
    products = load_products()
    for product in products.values():
        if topic in (product.topic, product.dead_letter_topic):
            return product
    known = ", ".join(sorted(p.topic for p in products.values()))
    raise LookupError(f"no data product is published on {topic!r}; topics of data products: {known}")


def _named_product(name: str) -> DataProduct:
    products = load_products()
    if name not in products:
        raise LookupError(f"no data product named {name!r}; known: {', '.join(sorted(products))}")
    return products[name]


def describe(record: ProductRecord) -> dict[str, Any]:
    """One record as a plain dict: key, op, before/after, event id, where it is."""
    value, headers = record.value, record.headers
    out: dict[str, Any] = {"topic": record.topic, "partition": record.partition, "offset": record.offset,
                           "key": record.key}
    if value is None:
        return {**out, "op": "tombstone", "event_id": headers.get("event_id"), "before": None, "after": None}
    return {**out, "op": value["op"], "event_id": event_id_of(value),
            "position": value["source"]["position"], "before": value["before"], "after": value["after"],
            "ts_ms": value["ts_ms"], "trace_id": headers.get("trace_id")}


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return str(value)


def consume(
    topic: str = typer.Argument(..., help="The data product's topic (see `dataplatform products list`)."),
    from_beginning: bool = typer.Option(False, "--from-beginning", help="Start at the oldest event, not the newest."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per line (for scripts)."),
    group: str = typer.Option(None, "--group", help="Consumer group (default: a fresh one; offsets not committed)."),
    max_events: int = typer.Option(None, "--max", min=1, help="Stop after this many messages."),
    timeout: float = typer.Option(None, "--timeout", min=0.1,
                                  help="Stop after this many seconds without a new message."),
    show_personal: bool = typer.Option(False, "--show-personal",
                                       help="Print personal fields too (redacted by default)."),
    product_name: str = typer.Option(None, "--product",
                                     help="Decode as this data product (default: the product whose topic it is)."),
    show_repeats: bool = typer.Option(False, "--show-repeats",
                                      help="Also print exact repeats (an event id already printed), which a "
                                           "producer re-sends after a crash; skipped by default."),
) -> None:
    """Print the decoded change events of a data product's topic: key, op, before/after, event id.

    Personal fields named in the product's manifest are shown as ***redacted*** unless
    --show-personal is given. An event whose id was already printed (re-sent after a
    producer's crash) is skipped unless --show-repeats is given.
    """
    try:
        product = _named_product(product_name) if product_name else product_for_topic(topic)
        settings = get_settings()
        start = Position.beginning() if from_beginning else Position.end()
        position = Position.committed(group, otherwise=start.reset) if group else start
        reader = ProductReader({topic: product}, position, registry=registry_client(settings=settings),
                               name="dataplatform-consume", settings=settings, show_personal=show_personal)
    except (LookupError, ValueError) as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    console = Console(highlight=False)
    seen = 0
    repeats = RepeatFilter()
    try:
        for record in reader.follow(lambda: max_events is not None and seen >= max_events, idle_timeout=timeout):
            event = describe(record)
            if not repeats.first_time(topic, event["event_id"]) and not show_repeats:
                continue
            seen += 1
            if json_out:
                typer.echo(json.dumps(event, default=_plain))
            else:
                _print(console, event)
            if group:
                reader.commit(record)
    except ReadError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()
    if repeats.repeats and not show_repeats and not json_out:
        typer.echo(f"({repeats.repeats} exact repeat(s) skipped)", err=True)


def _print(console: Console, event: dict[str, Any]) -> None:
    where = f"[dim]{event['topic']}[{event['partition']}]@{event['offset']}[/]"
    console.print(f"{where} [bold]{event['op']}[/] key={escape(str(event['key']))} event_id={event['event_id']}")
    for side in ("before", "after"):
        if event.get(side) is not None:
            console.print(f"    {side}: {json.dumps(event[side], default=_plain)}", markup=False)
