"""Kafka client configuration, built once from the settings for every component.

Producers, consumers, admin clients (librdkafka names) and Faust/aiokafka all start from
these functions, so connection and security settings are never repeated per component.
"""

from __future__ import annotations

from dataplatform.config import Settings, get_settings


def client_config(bootstrap: str | None = None, settings: Settings | None = None) -> dict[str, object]:
    """librdkafka settings shared by every client: where the cluster is, how to connect."""
    settings = settings or get_settings()
    servers = bootstrap or settings.kafka_bootstrap_servers
    if not servers:
        raise ValueError("no Kafka: set KAFKA_BOOTSTRAP_SERVERS or start the embedded broker")
    return {"bootstrap.servers": servers}


def reliable_producer_config(bootstrap: str | None = None, settings: Settings | None = None) -> dict[str, object]:
    """A producer that reports success only once every in-sync replica has the message."""
    return {
        **client_config(bootstrap, settings),
        "acks": "all",
        "enable.idempotence": True,
        "max.in.flight.requests.per.connection": 5,
        "retries": 2_147_483_647,
        "delivery.timeout.ms": 120_000,
        "linger.ms": 5,
        "compression.type": "lz4",
    }


def consumer_config(group_id: str, bootstrap: str | None = None, settings: Settings | None = None,
                    **overrides: object) -> dict[str, object]:
    """A consumer that commits only when the caller says the work is done."""
    return {
        **client_config(bootstrap, settings),
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        **overrides,
    }
