"""Schema registry client configuration, built once from the settings for every component.

The producer SDK, the outbox relay, the stream processor, the sinks, the warnings
follower and the CLI all build confluent-kafka's ``SchemaRegistryClient`` from
:func:`registry_client_config`, so the registry's address and credentials are mapped in
exactly one place (as Kafka's are in :mod:`dataplatform.kafka_config`):

- ``SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO`` (``USER:PASSWORD``) becomes Confluent's
  ``basic.auth.user.info``;
- ``SCHEMA_REGISTRY_BEARER_TOKEN`` (with ``SCHEMA_REGISTRY_BEARER_LOGICAL_CLUSTER``)
  becomes a static bearer token;
- otherwise, when the web service's own tokens are set (``API_WRITE_TOKEN``, else
  ``API_READ_TOKEN``), the token is sent as the basic-auth password, which is what the
  platform's own registry accepts: turning on API authentication never locks out the
  platform's own components.

Credentials never travel in the URL: a URL that carries ``user:password@`` is refused
with a message saying where to put them instead, and :func:`redacted_url` is what log
lines show of a registry's address.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from dataplatform.config import Settings, get_settings, shown

PLATFORM_USER = "dataplatform"
"""The user name sent with an API token as basic-auth password (the platform ignores it)."""


class RegistryConfigError(ValueError):
    """The registry's address or credentials cannot be used; the message says how to fix it."""


def registry_url(url: str | None = None, settings: Settings | None = None) -> str:
    """The registry's address, checked: http(s), a host, a valid port, no credentials in it."""
    url = url or (settings or get_settings()).schema_registry_url
    if not url:
        raise RegistryConfigError("no schema registry: set SCHEMA_REGISTRY_URL or start the web service "
                                  "(`dataplatform serve`)")
    example = "e.g. http://127.0.0.1:8080"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number from 0 to 65535
    except ValueError as exc:
        raise RegistryConfigError(f"the schema registry URL is not a URL ({exc}): {example}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RegistryConfigError(f"schema registry URL {shown(redacted_url(url))} is not an http(s) URL with a "
                                  f"host: {example}")
    if parts.password is not None:
        raise RegistryConfigError(f"SCHEMA_REGISTRY_URL={redacted_url(url)} carries credentials: put them in "
                                  "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO (or SCHEMA_REGISTRY_BEARER_TOKEN) instead, "
                                  "so they never appear in logs")
    return url


def registry_credentials(settings: Settings | None = None) -> dict[str, str]:
    """The credential part of a ``SchemaRegistryClient`` config (empty: none configured)."""
    s = settings or get_settings()
    if s.schema_registry_basic_auth_user_info is not None:
        user_info = s.schema_registry_basic_auth_user_info.get_secret_value()
        if ":" not in user_info:
            raise ValueError("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO must be USER:PASSWORD")
        return {"basic.auth.user.info": user_info}
    if s.schema_registry_bearer_token is not None:
        if not s.schema_registry_bearer_logical_cluster:
            raise ValueError("SCHEMA_REGISTRY_BEARER_TOKEN needs SCHEMA_REGISTRY_BEARER_LOGICAL_CLUSTER "
                             "(confluent-kafka sends it with the token; any value for the platform's own registry)")
        return {"bearer.auth.credentials.source": "STATIC_TOKEN",
                "bearer.auth.token": s.schema_registry_bearer_token.get_secret_value(),
                "bearer.auth.logical.cluster": s.schema_registry_bearer_logical_cluster}
    token = s.api_write_token or s.api_read_token
    if token is not None:
        return {"basic.auth.user.info": f"{PLATFORM_USER}:{token.get_secret_value()}"}
    return {}


def registry_client_config(url: str | None = None, settings: Settings | None = None) -> dict[str, str]:
    """``SchemaRegistryClient(conf)`` for the registry at ``url`` (default ``SCHEMA_REGISTRY_URL``)."""
    return {"url": registry_url(url, settings), **registry_credentials(settings)}


def redacted_url(url: str) -> str:
    """``url`` with any password replaced, for log lines and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:*****@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
