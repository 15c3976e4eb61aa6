"""Apache Iceberg's REST catalog server (the ``apache/iceberg-rest-fixture`` image's server)
on a loopback port, with its warehouse on an S3-compatible store.

Configured as the image is, by ``CATALOG_*`` environment variables (``CATALOG_S3_ENDPOINT``
is the catalog property ``s3.endpoint``; ``__`` stands for ``-``): a ``JdbcCatalog`` backend,
here on a SQLite file in ``data_dir`` rather than the image's in-memory database so that a
restart (an outage test) keeps the tables; ``S3FileIO`` for the warehouse. The store's
credentials go in the AWS SDK's own variables, not in catalog properties, because the
server logs its catalog properties at start.

It runs through ``LoopbackRestCatalog.java`` (beside this module), which binds the server
to loopback; see that file for why.
"""

from __future__ import annotations

from pathlib import Path

from dataplatform.lakehouse.jars import rest_catalog_jars
from dataplatform.lakehouse.object_store import ObjectStore
from dataplatform.lakehouse.server import HOST, HttpJvmServer

LAUNCHER = Path(__file__).with_name("LoopbackRestCatalog.java")


class RestCatalogServer(HttpJvmServer):
    """``org.apache.iceberg.rest.RESTCatalogServer``'s catalog, served on ``HOST``."""

    name = "Iceberg REST catalog server"
    ready_path = "/v1/config"
    heap = "384m"

    def __init__(self, data_dir: Path | str, store: ObjectStore, warehouse: str, *,
                 port: int | None = None) -> None:
        super().__init__(data_dir, port=port)
        self.store = store
        self.warehouse = warehouse

    def arguments(self) -> list[str]:
        return ["-cp", f"{rest_catalog_jars()}/*", str(LAUNCHER), HOST, str(self.port)]

    def environment(self) -> dict[str, str]:
        return {
            "CATALOG_CATALOG__IMPL": "org.apache.iceberg.jdbc.JdbcCatalog",
            # WAL and a 30 s busy timeout: a request held up by the store does not fail the others after
            # sqlite-jdbc's default 3 s
            "CATALOG_URI": f"jdbc:sqlite:{self.data_dir / 'catalog.db'}?journal_mode=WAL&busy_timeout=30000",
            "CATALOG_JDBC_USER": "user",
            "CATALOG_JDBC_PASSWORD": "password",
            "CATALOG_WAREHOUSE": self.warehouse,
            "CATALOG_IO__IMPL": "org.apache.iceberg.aws.s3.S3FileIO",
            "CATALOG_S3_ENDPOINT": self.store.url,
            "CATALOG_S3_PATH__STYLE__ACCESS": "true",
            "CATALOG_CLIENT_REGION": self.store.region,
            "AWS_REGION": self.store.region,
            "AWS_ACCESS_KEY_ID": self.store.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.store.secret_access_key,
            # AWS SDK 2.30+ adds checksums S3Proxy does not verify; send them only when required.
            "AWS_REQUEST_CHECKSUM_CALCULATION": "WHEN_REQUIRED",
            "AWS_RESPONSE_CHECKSUM_VALIDATION": "WHEN_REQUIRED",
        }

    def catalog_properties(self) -> dict[str, str]:
        """pyiceberg ``load_catalog`` properties for this server and its store."""
        return {"type": "rest", "uri": self.url, "warehouse": self.warehouse, **self.store.client_properties()}
