"""``dataplatform warnings tail``: live warnings of every kind in the terminal."""

from __future__ import annotations

import json
import time

import typer

from dataplatform.config import get_settings
from dataplatform.product_io.reader import Position, ProductReader
from dataplatform.product_io.serialization import registry_client
from dataplatform.products.envelope import entity_of
from dataplatform.products.product import get_product
from dataplatform.repeats import RepeatFilter
from dataplatform.warnings.kinds import kind_for, plain, recognise, warning_kinds

app = typer.Typer(help="Live warnings of every derived product (housing shortfalls, interpreter shortages, ...).",
                  no_args_is_help=True)
COLOURS = {"RED": "red", "AMBER": "yellow", "NONE": "green"}


def _topics(products: list[str], topics: list[str]) -> dict[str, str]:
    """``{topic: product}`` to read: each chosen warnings product's topic, or the topics given."""
    try:
        chosen = [kind_for(p).product for p in products] if products else list(warning_kinds())
    except KeyError as exc:
        raise typer.BadParameter(f"{exc.args[0]} (see `dataplatform derivations list`)", param_hint="--product") from None
    if topics:   # a record read from a topic given here is recognised by its fields
        return {t: chosen[0] for t in topics}
    return {get_product(p).topic: p for p in chosen}


@app.command()
def tail(
    from_beginning: bool = typer.Option(False, "--from-beginning", help="Show every transition so far, then follow."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line, with the warnings product it came from."),
    max_events: int = typer.Option(None, "--max", help="Stop after this many transitions."),
    timeout: float = typer.Option(None, "--timeout", help="Stop after this many seconds."),
    product: list[str] = typer.Option([], "--product", metavar="NAME", help="Only this warnings product (repeat "
                                      "for more). Without it: every derivation's warnings product."),
    topic: list[str] = typer.Option([], "--topic", metavar="TOPIC", help="Read this topic instead (repeat for "
                                    "more); each record's kind is recognised by its fields."),
) -> None:
    """Print each warning transition as it happens (Ctrl-C stops)."""
    settings = get_settings()
    read = _topics(product, topic)
    reader = ProductReader({t: get_product(p) for t, p in read.items()},
                           Position.beginning() if from_beginning else Position.end(),
                           registry=registry_client(settings=settings), name="dataplatform-tail", settings=settings,
                           skip_unreadable=True, wait_for_topics=True)
    seen, deadline = 0, (time.monotonic() + timeout) if timeout else None
    repeats = RepeatFilter()   # a transition re-sent after the processor crashed is printed once
    only = set(product)

    def done() -> bool:
        return (max_events is not None and seen >= max_events) or (deadline is not None and time.monotonic() >= deadline)

    try:
        for record in reader.follow(done):
            if record.value is None or not repeats.first_time(record.topic, record.event_id):
                continue
            w = entity_of(record.value)
            kind = recognise(w) if topic else kind_for(read[record.topic])
            if only and (kind is None or kind.product not in only):
                continue
            seen += 1
            if as_json:
                typer.echo(json.dumps({"product": kind.product if kind else None, **{k: plain(v) for k, v in w.items()}}))
            else:
                typer.secho(w["message"], fg=COLOURS.get(w["severity"]))
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()
