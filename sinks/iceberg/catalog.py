"""The Iceberg catalog the platform writes to and reads from.

Configured the way pyiceberg users already configure a catalog: a catalog named by
``ICEBERG_CATALOG`` (default ``dataplatform``) in ``PYICEBERG_CATALOG__<NAME>__…`` variables
or ``.pyiceberg.yaml`` (a REST catalog such as Glue's Iceberg endpoint, with an S3
warehouse, in production). With no such configuration, the embedded default: pyiceberg's
SQL catalog on SQLite under ``DATAPLATFORM_HOME/iceberg``, warehouse on the local disk.
"""

from __future__ import annotations

from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.utils.config import Config
from requests.adapters import HTTPAdapter

from dataplatform.config import Settings, shown_url


def embedded_properties(settings: Settings) -> dict[str, str]:
    """The embedded default catalog: SQLite catalog database, local warehouse folder."""
    root = (settings.dataplatform_home / "iceberg").resolve()
    (root / "warehouse").mkdir(parents=True, exist_ok=True)
    return {"type": "sql", "uri": f"sqlite:///{root / 'catalog.db'}", "warehouse": f"file://{root / 'warehouse'}"}


def configured_properties(settings: Settings) -> dict[str, str] | None:
    """The catalog's properties in pyiceberg's own configuration as it is now (pyiceberg's
    ``load_catalog`` reads the environment once, when it is imported), or None."""
    return Config().get_catalog_config(settings.iceberg_catalog)


def is_configured(settings: Settings) -> bool:
    """Whether pyiceberg's own configuration names the catalog (else the embedded one)."""
    return configured_properties(settings) is not None


def open_catalog(settings: Settings) -> Catalog:
    """The configured catalog, else the embedded default; a REST catalog's requests time out."""
    properties = configured_properties(settings)
    if properties is None:
        return load_catalog(settings.iceberg_catalog, **embedded_properties(settings))
    catalog = load_catalog(settings.iceberg_catalog, **properties)
    if isinstance(catalog, RestCatalog):
        adapter = _TimeoutAdapter(settings.iceberg_request_timeout_seconds)
        for scheme in ("http://", "https://"):
            catalog._session.mount(scheme, adapter)   # pyiceberg 0.12's session (pinned below 0.13)
    return catalog


class _TimeoutAdapter(HTTPAdapter):
    """pyiceberg's REST client sends its requests with no timeout. With the object store down,
    a REST catalog server (Iceberg's own among them) retries reading table metadata for
    minutes, and the sink's ``load_table`` waited in silence, never backing off or stopping.
    With a timeout it fails, and the sink's retry loop backs off and says so."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def send(self, request, **kwargs):  # noqa: ANN001, ANN003, ANN201 - requests' own signature
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def describe_catalog(catalog: Catalog) -> str:
    """What a start-up line says of the catalog: its kind, address and warehouse, no secret."""
    props = catalog.properties
    kind = props.get("type") or ("rest" if str(props.get("uri", "")).startswith("http") else "configured")
    try:
        uri = shown_url(props["uri"]) if props.get("uri") else "no uri"
    except Exception:  # noqa: BLE001 - not a URL sqlalchemy parses: say no more than its scheme
        uri = str(props["uri"]).split("://")[0] + "://…"
    return f"{kind} catalog at {uri}, warehouse {props.get('warehouse', 'chosen by the catalog')}"
