"""Where the platform's Kafka comes from, in one order everywhere:

1. ``KAFKA_BOOTSTRAP_SERVERS`` (an existing cluster);
2. Testcontainers' Kafka module, when ``DATAPLATFORM_KAFKA=testcontainers`` and a Docker
   engine answers;
3. the embedded broker started from Kafka's jars.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from dataplatform.config import Settings, get_settings
from dataplatform.kafka.connection import check_connection
from dataplatform.kafka.errors import BrokerError
from dataplatform.kafka.node import EmbeddedKafka


@contextlib.contextmanager
def kafka_bootstrap(data_dir: Path | None = None, settings: Settings | None = None) -> Iterator[str]:
    """Yield a bootstrap address of a working Kafka, starting one if needed and stopping
    only what was started here."""
    settings = settings or get_settings()
    if settings.kafka_bootstrap_servers:
        check_connection(settings=settings)  # a wrong address, password or certificate: say so now
        yield settings.kafka_bootstrap_servers
        return
    if settings.dataplatform_kafka == "testcontainers":
        with _testcontainers_kafka() as bootstrap:
            yield bootstrap
        return
    if settings.dataplatform_kafka not in ("auto", "embedded"):
        raise BrokerError(
            f"DATAPLATFORM_KAFKA={settings.dataplatform_kafka!r} is not one of auto, embedded, testcontainers"
        )
    broker = EmbeddedKafka(data_dir or settings.kafka_data_dir)
    bootstrap = broker.start()
    try:
        yield bootstrap
    finally:
        broker.stop()


@contextlib.contextmanager
def _testcontainers_kafka() -> Iterator[str]:
    try:  # an optional extra: imported only when asked for, so its absence is a clear error
        from testcontainers.kafka import KafkaContainer
    except ImportError as exc:  # pragma: no cover - depends on installed extras
        raise BrokerError("DATAPLATFORM_KAFKA=testcontainers needs 'testcontainers[kafka]' installed") from exc
    try:
        container = KafkaContainer().with_kraft()
        container.start()
    except Exception as exc:
        raise BrokerError(
            f"DATAPLATFORM_KAFKA=testcontainers but no Docker engine answered ({exc}); "
            "unset it to use the embedded broker"
        ) from exc
    try:
        yield container.get_bootstrap_server()
    finally:
        container.stop()
