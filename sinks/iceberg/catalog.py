"""The Iceberg catalog the platform writes to and reads from.

Configured the way pyiceberg users already configure a catalog: a catalog named by
``ICEBERG_CATALOG`` (default ``dataplatform``) in ``PYICEBERG_CATALOG__<NAME>__…`` variables
or ``.pyiceberg.yaml`` (a REST catalog such as Glue's Iceberg endpoint, with an S3
warehouse, in production). With no such configuration, the embedded default: pyiceberg's
SQL catalog on SQLite under ``DATAPLATFORM_HOME/iceberg``, warehouse on the local disk.
"""

from __future__ import annotations

from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.utils.config import Config

from dataplatform.config import Settings, shown_url


def embedded_properties(settings: Settings) -> dict[str, str]:
    """The embedded default catalog: SQLite catalog database, local warehouse folder."""
    root = (settings.dataplatform_home / "iceberg").resolve()
    (root / "warehouse").mkdir(parents=True, exist_ok=True)
    return {"type": "sql", "uri": f"sqlite:///{root / 'catalog.db'}", "warehouse": f"file://{root / 'warehouse'}"}


def is_configured(settings: Settings) -> bool:
    """Whether pyiceberg's own configuration names the catalog (else the embedded one)."""
    return Config().get_catalog_config(settings.iceberg_catalog) is not None


def open_catalog(settings: Settings) -> Catalog:
    """The configured catalog, else the embedded default."""
    if is_configured(settings):
        return load_catalog(settings.iceberg_catalog)
    return load_catalog(settings.iceberg_catalog, **embedded_properties(settings))


def describe_catalog(catalog: Catalog) -> str:
    """What a start-up line says of the catalog: its kind, address and warehouse, no secret."""
    props = catalog.properties
    kind = props.get("type") or ("rest" if str(props.get("uri", "")).startswith("http") else "configured")
    try:
        uri = shown_url(props["uri"]) if props.get("uri") else "no uri"
    except Exception:  # noqa: BLE001 - not a URL sqlalchemy parses: say no more than its scheme
        uri = str(props["uri"]).split("://")[0] + "://…"
    return f"{kind} catalog at {uri}, warehouse {props.get('warehouse', 'chosen by the catalog')}"
