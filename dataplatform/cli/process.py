"""``dataplatform process``: run the processor a derivation spec compiles to (Faust workers)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import typer

from dataplatform.config import get_settings
from dataplatform.derivations.loading import DerivationError
from dataplatform.stream_processors.config import DEFAULT_DERIVATION, STORE_ENV, ProcessorConfig, default_store


def process(
    derivation: str = typer.Option(DEFAULT_DERIVATION, "--derivation", "-d",
                                   help="The derivation to run (see `dataplatform derivations list`)."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Worker processes; they split the partitions."),
    rules: Path = typer.Option(None, "--rules", help="YAML rules file replacing the spec's rules "
                                                     "(same format as the spec's `rules:`)."),
    horizon_days: int = typer.Option(None, "--horizon-days", min=0,
                                     help="Override the horizon (days) of the spec and of every rule."),
    app_id: str = typer.Option(None, "--app-id",
                               help="Faust app id: consumer group and prefix of changelog topics "
                                    "[default: the spec's app_id]."),
    topic_prefix: str = typer.Option("", "--topic-prefix", help="Prefix for every product topic (test deployments)."),
    partitions: int = typer.Option(4, "--partitions", min=1, help="Partitions of the co-partitioned topics."),
    tick_seconds: float = typer.Option(30.0, "--tick-seconds", min=0.5,
                                       help="How often every group is re-evaluated as the horizon moves."),
    batch_size: int = typer.Option(1000, "--batch-size", min=1,
                                   help="Most events one step processes together (groups are evaluated once per step)."),
    batch_ms: float = typer.Option(100.0, "--batch-ms", min=1.0,
                                   help="Longest wait (ms) for a batch to fill before it is processed."),
    stall_seconds: float = typer.Option(60.0, "--stall-seconds", min=0,
                                        help="Restart the workers when they have lag and commit nothing for this "
                                             "long (0: never)."),
    store: str = typer.Option(None, "--store", envvar=STORE_ENV, show_default="rocksdb://",
                              help="Table store: rocksdb:// (kept on disk under --datadir: a restarted worker "
                                   "reads only the changelog records written since) or memory:// (rebuilt from "
                                   "the changelogs at every start)."),
    datadir: Path = typer.Option(None, "--datadir", envvar="PROCESSOR_DATADIR",
                                 show_default="$DATAPLATFORM_HOME/processor/<app id>",
                                 help="Where workers keep their local state; keep it from one run to the next "
                                      "for a rocksdb:// store to spare the restore."),
    duration: float = typer.Option(None, "--duration", help="Stop by itself after this many seconds."),
) -> None:
    """Run a derivation: join its input products per group, publish its figures, raise its warnings.

    A worker that dies is restarted (after 1 s, doubling to 30 s while it keeps dying) and
    the others keep working; each restart is reported on stderr.

    The default derivation reads the housing availability and prison releases products and
    writes platforms.area_supply_demand.v1 and platforms.housing_shortfall_warnings.v1.
    Needs KAFKA_BOOTSTRAP_SERVERS and SCHEMA_REGISTRY_URL (see README). Ctrl-C stops
    every worker cleanly.
    """
    settings = get_settings()
    try:
        config = ProcessorConfig(derivation=derivation, app_id=app_id or "", topic_prefix=topic_prefix,
                                 partitions=partitions, rules_path=str(rules) if rules else None,
                                 horizon_days=horizon_days, tick_seconds=tick_seconds, batch_size=batch_size,
                                 batch_seconds=batch_ms / 1000, store=store or default_store())
        datadir = datadir or settings.dataplatform_home / "processor" / config.app_id
        config = config.with_(datadir=str(datadir.resolve())).resolved(settings)
        config.spec   # fail early, in this process, on a bad spec or rules file
    except (DerivationError, KeyError, ValueError) as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2)
    from dataplatform.stream_processors.deployment.topic_layout import TopicLayoutError
    from dataplatform.stream_processors.deployment.pool import start_workers

    try:
        pool = start_workers(workers, settings, config)
    except TopicLayoutError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2)
    pool.stall_after_s = stall_seconds
    typer.echo(f"Processor       {config.app_id}: derivation {derivation}, {workers} worker(s)"
               + (f", rules {rules}" if rules else ""))
    for log in pool.logs:
        typer.echo(f"Worker log      {log}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0 if duration is None else min(1.0, duration)):
            for what in pool.supervise():   # a dead worker is restarted, the others keep working
                typer.secho(what, err=True, fg="yellow")
            if duration is not None:
                duration -= 1.0
                if duration <= 0:
                    break
    except KeyboardInterrupt:
        pass
    typer.echo("Stopping workers...")
    codes = pool.stop()
    raise typer.Exit(0 if all(c in (0, -signal.SIGTERM) for c in codes) else 1)
