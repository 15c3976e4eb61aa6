"""Fail fast, and say why, when Kafka cannot be reached as configured.

librdkafka retries a refused password or an untrusted certificate quietly forever; a
component that calls :func:`check_connection` at start-up stops at once instead, with an
error naming the setting to fix.
"""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, Producer

from dataplatform.config import Settings, get_settings
from dataplatform.kafka_config import client_config


class KafkaConnectionError(RuntimeError):
    """Kafka refused or could not be reached; ``reason`` is auth, tls or unreachable."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def _explain(code: int, text: str, settings: Settings) -> KafkaConnectionError | None:
    if code == KafkaError._AUTHENTICATION or "SASL authentication error" in text:
        return KafkaConnectionError(
            "auth", f"Kafka refused the credentials of KAFKA_SASL_USERNAME={settings.kafka_sasl_username!r} "
                    f"({settings.kafka_sasl_mechanism}): wrong user name or password. Broker said: {text}")
    if code == KafkaError._SSL or "SSL handshake failed" in text:
        if "certificate verify failed" in text:
            return KafkaConnectionError(
                "tls", f"The broker's TLS certificate is not trusted: KAFKA_SSL_CA_LOCATION="
                       f"{settings.kafka_ssl_ca_location} does not hold the CA that signed it. Broker said: {text}")
        return KafkaConnectionError("tls", f"TLS handshake with Kafka failed: {text}")
    return None


def check_connection(bootstrap: str | None = None, settings: Settings | None = None, timeout: float = 15.0) -> None:
    """Return once a metadata request succeeds; raise KafkaConnectionError otherwise."""
    settings = settings or get_settings()
    errors: list[tuple[int, str]] = []
    probe = Producer({**client_config(bootstrap, settings), "log_level": 0,
                      "error_cb": lambda e: errors.append((e.code(), e.str()))})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for code, text in errors:
            explained = _explain(code, text, settings)
            if explained:
                raise explained
        try:
            probe.list_topics(timeout=1.0)
            return
        except Exception:
            probe.poll(0.1)
    last = errors[-1][1] if errors else "no answer"
    raise KafkaConnectionError("unreachable", f"Kafka at {bootstrap or settings.kafka_bootstrap_servers} did not "
                                              f"answer within {timeout:.0f}s: {last}")
