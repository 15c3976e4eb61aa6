"""``dataplatform topics``: the platform's topics against its replication policy.

On a cluster, a topic created with one replica (by hand, or before the cluster grew) loses
acknowledged events with the broker that holds it; ``check`` finds such topics before a
broker goes.
"""

from __future__ import annotations

import json

import typer
from confluent_kafka.admin import AdminClient
from rich.console import Console

from dataplatform.cli.tables import fitted_table
from dataplatform.config import get_settings
from dataplatform.derivations.loading import load_derivations
from dataplatform.heartbeat import HEARTBEAT_TOPIC
from dataplatform.kafka_config import client_config
from dataplatform.products.product import load_products
from dataplatform.stream_processors.config import ProcessorConfig
from dataplatform.topics import ReplicationError, check_replication

app = typer.Typer(help="The platform's Kafka topics.", no_args_is_help=True)


def platform_topics(admin: AdminClient) -> list[str]:
    """Every topic the platform creates: products and their dead letters, heartbeats, and
    each processor's repartition and changelog topics (and any other of its app id's)."""
    names = [HEARTBEAT_TOPIC]
    for product in load_products().values():
        names += [product.topic, product.dead_letter_topic]
    app_ids = set()
    for name in load_derivations():
        config = ProcessorConfig(derivation=name)
        app_ids.add(config.app_id)
        names += [config.contributions_topic, *(config.changelog_topic(t) for t in config.tables)]
    existing = admin.list_topics(timeout=30).topics
    names += sorted(t for t in existing if any(t.startswith(f"{a}-") for a in app_ids))
    return list(dict.fromkeys(names))


@app.command()
def check(
    bootstrap: str = typer.Option(None, "--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka bootstrap servers."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per topic, for scripts."),
) -> None:
    """Report every topic of the platform whose replication is below TOPIC_REPLICATION_FACTOR /
    TOPIC_MIN_INSYNC_REPLICAS (by default 3 and 2 on three or more brokers). Exits 1 if any is.

    Example: dataplatform topics check --bootstrap broker-1:9092
    """
    settings = get_settings()
    admin = AdminClient(client_config(bootstrap, settings))
    try:
        found = check_replication(admin, platform_topics(admin), settings)
    except ReplicationError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2)
    below = [t for t in found if t.problems]
    if as_json:
        typer.echo(json.dumps([{"topic": t.topic, "partitions": t.partitions, "replication_factor": t.factor,
                                "min_insync_replicas": t.min_insync, "problems": t.problems} for t in found], indent=2))
    else:
        console = Console()
        rows = [(t.topic, str(t.partitions), str(t.factor), str(t.min_insync), "; ".join(t.problems) or "ok")
                for t in found]
        table, _ = fitted_table(("topic", "partitions", "replicas", "min ISR", "status"), rows, console.width,
                                whole=("topic",), drop_order=("partitions",))
        console.print(table)
        wanted = found[0].wanted if found else None
        if wanted:
            console.print(f"{len(found)} topics; wanted: replication factor {wanted.factor}, "
                          f"min.insync.replicas {wanted.min_insync}; {len(below)} below")
    if below:
        raise typer.Exit(1)
