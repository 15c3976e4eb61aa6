"""``dataplatform bridge``: services' HMPPS domain events (SNS/SQS) published as data products.

Each product folder with a ``bridge.yaml`` is a bridge (docs/bridges.md). ``run`` starts
one (or all) in this process; Ctrl-C or SIGTERM finishes the batch in hand and stops.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import typer

from dataplatform.cli.long_running import serve_metrics_or_exit, stop_on_signals
from dataplatform.config import get_settings

app = typer.Typer(help="Bridges: HMPPS domain events on SNS/SQS published as data products, declared in bridge.yaml.",
                  no_args_is_help=True)


def _status_dir() -> Path:
    return get_settings().dataplatform_home / "bridges"


def _bridges(names: list[str] | None):  # noqa: ANN202
    from dataplatform.bridges.loading import BridgeSpecError, load_bridges

    try:
        found = load_bridges()
    except BridgeSpecError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(1)
    unknown = [n for n in names or [] if n not in found]
    if unknown:
        typer.secho(f"error: no bridge feeds {', '.join(unknown)}; bridged products: "
                    f"{', '.join(sorted(found)) or 'none'}", err=True, fg="red")
        raise typer.Exit(1)
    return [b for name, b in sorted(found.items()) if not names or name in names]


@app.command("run")
def run(
    product: list[str] = typer.Argument(None, help="Bridged products to run (default: every bridge)."),
    queue: str = typer.Option(None, "--queue", help="Queue URL or name instead of the spec's (one bridge only)."),
    topic: str = typer.Option(None, "--topic", help="Kafka topic instead of the product's, e.g. for a rehearsal "
                                                    "(one bridge only)."),
    wait_seconds: int = typer.Option(20, "--wait-seconds", min=0, max=20, help="SQS long-poll wait per receive."),
    visibility_timeout: int = typer.Option(30, "--visibility-timeout", min=1,
                                           help="Seconds a received message stays hidden; extended while in hand."),
    detail_retry_seconds: float = typer.Option(60.0, "--detail-retry-seconds", min=0,
                                               help="How long a failing detailUrl is retried before dead-lettering."),
    metrics_port: int = typer.Option(None, "--metrics-port", help="Serve Prometheus metrics on this port at /metrics "
                                                                  "(needs API_READ_TOKEN or API_WRITE_TOKEN once "
                                                                  "API_READ_TOKEN is set)."),
) -> None:
    """Long-poll each bridge's queue and publish its domain events (acks=all) before deleting them.

    Example:  AWS_REGION=eu-west-2 dataplatform bridge run prison_releases_housing_need

    Region, queue and credentials as boto3 finds them (AWS_ENDPOINT_URL for another SNS/SQS
    server); BRIDGE_TOKEN_URL, BRIDGE_CLIENT_ID and BRIDGE_CLIENT_SECRET for detailUrl calls.
    """
    from dataplatform.producers.bridges.detail import DetailClient
    from dataplatform.producers.bridges.runner import BridgeRunner

    bridges = _bridges(product)
    if (queue or topic) and len(bridges) != 1:
        typer.secho("error: --queue and --topic need exactly one bridge: name its product", err=True, fg="red")
        raise typer.Exit(1)
    settings = get_settings()
    stop = stop_on_signals()
    if metrics_port:
        typer.echo(serve_metrics_or_exit(metrics_port, settings))
    from dataplatform.crash_points import arm_from_environment

    arm_from_environment()
    threads, failures = [], []
    for bridge in bridges:
        detail = DetailClient(token_url=settings.bridge_token_url, client_id=settings.bridge_client_id,
                              client_secret=settings.bridge_client_secret.get_secret_value()
                              if settings.bridge_client_secret else None, retry_seconds=detail_retry_seconds)
        try:
            runner = BridgeRunner(bridge, settings, queue=queue, topic=topic, wait_seconds=wait_seconds, detail=detail,
                                  visibility_timeout=visibility_timeout, status_dir=_status_dir())
        except Exception as exc:  # noqa: BLE001 - the queue cannot be found: say which and why
            typer.secho(f"error: bridge {bridge.name}: cannot open queue {queue or bridge.queue}: {exc}", err=True,
                        fg="red")
            raise typer.Exit(1)
        typer.echo(f"bridge {bridge.name}: {runner.queue_url} -> {runner.publisher.topic}. Ctrl-C stops.")

        def work(r=runner) -> None:  # noqa: ANN001
            try:
                r.run(stop)
            except Exception as exc:  # noqa: BLE001 - reported below; the others stop too
                failures.append(f"bridge {r.bridge.name}: {exc}")
                stop.set()
        threads.append(threading.Thread(target=work, name=f"bridge-{bridge.name}"))
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        stop.wait(0.5)
    for t in threads:
        t.join()
    for failure in failures:
        typer.secho(f"error: {failure}", err=True, fg="red")
    if failures:
        raise typer.Exit(1)


@app.command("list")
def list_bridges(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every bridge: the product it feeds, its queue and topic, the event types it maps.

    Example:  dataplatform bridge list --json
    """
    rows = [{"product": b.name, "queue": b.queue, "topic": b.topic, "system": b.system,
             "event_types": list(b.event_types), "unknown_event_types": "ignore" if b.ignore_unknown else "dead-letter"}
            for b in _bridges(None)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        typer.echo(f"{r['product']}: queue {r['queue']} (topic {r['topic'] or '?'}), from {r['system']}; "
                   f"{', '.join(r['event_types'])}; other types: {r['unknown_event_types']}")


@app.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """What each bridge run from DATAPLATFORM_HOME has done: messages by outcome (published,
    ignored, or the reason each was dead-lettered).

    Example:  dataplatform bridge status --json
    """
    found = [json.loads(p.read_text()) for p in sorted(_status_dir().glob("*.json"))]
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    if not found:
        typer.echo(f"no bridge has run with DATAPLATFORM_HOME={get_settings().dataplatform_home}")
    for s in found:
        counts = ", ".join(f"{n} {outcome}" for outcome, n in s["counts"].items()) or "no messages yet"
        typer.echo(f"{s['bridge']}: {counts} ({s['queue']} -> {s['topic']})")
