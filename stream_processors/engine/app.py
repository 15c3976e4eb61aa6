"""The Faust app a processor runs, and the Faust worker that runs it.

One place for every setting the engine gives Faust (the patched transport, the processor's
tables, at-least-once with the step barrier of :mod:`.checkpoint`, static membership) and
for starting Faust's worker, so that the deployment starts a worker without knowing Faust.
"""

from __future__ import annotations

import faust

from dataplatform.config import Settings
from dataplatform.kafka_config import faust_broker_credentials
from dataplatform.stream_processors.config import ProcessorConfig
from dataplatform.stream_processors.engine.faust_patches.tables import ProcessorTable
from dataplatform.stream_processors.engine.faust_patches.transport import broker_url


def faust_app(c: ProcessorConfig, settings: Settings) -> faust.App:
    """The Faust app of configuration ``c`` (resolved), its agents not yet wired."""
    return faust.App(
        c.app_id,
        broker=broker_url(c.bootstrap),
        broker_credentials=faust_broker_credentials(settings),
        store=c.store,
        Table=ProcessorTable,
        topic_partitions=c.partitions,
        # every topic the app uses is created up front (topic_layout), with the platform's replication
        table_standby_replicas=0,
        processing_guarantee="at_least_once",   # with deterministic steps, not transactions (docs)
        consumer_auto_offset_reset="earliest",
        # static membership: a restarted worker takes its partitions back at once instead
        # of waiting for the group to time out its previous incarnation
        consumer_group_instance_id=c.instance_id,
        broker_session_timeout=c.session_timeout_seconds,
        broker_heartbeat_interval=max(0.5, c.session_timeout_seconds / 5),
        producer_acks=-1,
        web_enabled=False,
        datadir=c.datadir,
        key_serializer="raw",
        value_serializer="json",
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        producer_linger=0.01,
    )


def run(app: faust.App, loglevel: str) -> None:
    """Run ``app`` in this process (main thread) until SIGTERM/SIGINT: Faust's worker stops
    gracefully (finishes the batch in hand, commits offsets, flushes the producer)."""
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
