"""Kafka client configuration, built once from the settings for every component.

Producers, consumers and admin clients (librdkafka's names) and Faust workers (aiokafka's
credentials) all start from these functions, so connection and security settings
(``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_*``, ``KAFKA_SSL_*``) are mapped in exactly one
place and never repeated per component. Secrets are read from the settings (environment
or a file) and never logged: :func:`redacted` is what goes into log lines.
"""

from __future__ import annotations

import logging
import ssl

from dataplatform.config import Settings, get_settings

SECRET_KEYS = {"sasl.password", "ssl.key.password"}
#: librdkafka's own lines (``%4|...|GETPID|...``) go through Python logging under this name
#: instead of straight to stderr, so they land in the log files with everything else and a
#: terminal shows only the platform's own lines. librdkafka hands them over on poll/flush.
KAFKA_CLIENT_LOG = logging.getLogger("dataplatform.kafka.client")


def sasl_password(settings: Settings) -> str | None:
    if settings.kafka_sasl_password is not None:
        return settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_sasl_password_file is not None:
        return settings.kafka_sasl_password_file.read_text().strip()
    return None


def security_config(settings: Settings | None = None) -> dict[str, object]:
    """librdkafka's security settings from the platform's settings."""
    s = settings or get_settings()
    protocol = s.kafka_security_protocol.upper()
    conf: dict[str, object] = {"security.protocol": protocol}
    if protocol.startswith("SASL"):
        if not (s.kafka_sasl_mechanism and s.kafka_sasl_username and sasl_password(s) is not None):
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME "
                             "and KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE)")
        conf.update({"sasl.mechanism": s.kafka_sasl_mechanism.upper(), "sasl.username": s.kafka_sasl_username,
                     "sasl.password": sasl_password(s)})
    if protocol.endswith("SSL"):
        if s.kafka_ssl_ca_location:
            conf["ssl.ca.location"] = str(s.kafka_ssl_ca_location)
        if s.kafka_ssl_certificate_location:
            conf["ssl.certificate.location"] = str(s.kafka_ssl_certificate_location)
        if s.kafka_ssl_key_location:
            conf["ssl.key.location"] = str(s.kafka_ssl_key_location)
        if s.kafka_ssl_key_password:
            conf["ssl.key.password"] = s.kafka_ssl_key_password.get_secret_value()
    return conf


def client_config(bootstrap: str | None = None, settings: Settings | None = None) -> dict[str, object]:
    """librdkafka settings shared by every client: where the cluster is, how to connect."""
    settings = settings or get_settings()
    servers = bootstrap or settings.kafka_bootstrap_servers
    if not servers:
        raise ValueError("no Kafka: set KAFKA_BOOTSTRAP_SERVERS or start the embedded broker")
    return {"bootstrap.servers": servers, "logger": KAFKA_CLIENT_LOG, **security_config(settings)}


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


def redacted(conf: dict[str, object]) -> dict[str, object]:
    """A copy of a client config that is safe to log (and to write as JSON: no logger object)."""
    return {k: ("*****" if k in SECRET_KEYS else v) for k, v in conf.items() if k != "logger"}


def ssl_context(settings: Settings | None = None) -> ssl.SSLContext | None:
    """The TLS context for aiokafka (Faust) from the same settings, or None for plaintext."""
    s = settings or get_settings()
    if not s.kafka_security_protocol.upper().endswith("SSL"):
        return None
    ctx = ssl.create_default_context(cafile=str(s.kafka_ssl_ca_location) if s.kafka_ssl_ca_location else None)
    if s.kafka_ssl_certificate_location:
        ctx.load_cert_chain(str(s.kafka_ssl_certificate_location),
                            str(s.kafka_ssl_key_location) if s.kafka_ssl_key_location else None,
                            s.kafka_ssl_key_password.get_secret_value() if s.kafka_ssl_key_password else None)
    return ctx


def faust_broker_credentials(settings: Settings | None = None):
    """aiokafka's credentials for a Faust app (``faust.App(broker_credentials=...)``), or None."""
    import faust

    s = settings or get_settings()
    protocol = s.kafka_security_protocol.upper()
    if protocol == "PLAINTEXT":
        return None
    ctx = ssl_context(s)
    if protocol.startswith("SASL"):
        security_config(s)  # the same completeness check as for librdkafka
        return faust.SASLCredentials(username=s.kafka_sasl_username, password=sasl_password(s),
                                     mechanism=s.kafka_sasl_mechanism.upper(), ssl_context=ctx)
    return faust.SSLCredentials(ctx)

