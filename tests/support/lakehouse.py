"""The lakehouse for tests: Apache Iceberg's REST catalog server and an S3 store (S3Proxy),
both started from Maven jars once per session, and a second reader of Iceberg tables.

``LakehouseServers`` owns the two JVMs and can stop and restart either (outage tests).
``read_with_duckdb`` reads a table's data files straight from storage into DuckDB, so a
test can check what pyiceberg's scan says against a reader that shares none of its
Parquet or S3 code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.table import Table

from dataplatform.lakehouse.object_store import ObjectStore
from dataplatform.lakehouse.rest_catalog import RestCatalogServer


class LakehouseServers:
    """The object store, then the catalog server whose warehouse is on it."""

    def __init__(self, root: Path) -> None:
        self.store = ObjectStore(root / "s3")
        self.catalog_server = RestCatalogServer(root / "rest", self.store, self.store.create_bucket("warehouse"))

    def start(self) -> None:
        self.store.start()
        self.catalog_server.start()

    def stop(self) -> None:
        self.catalog_server.stop()
        self.store.stop()

    @property
    def properties(self) -> dict[str, str]:
        return self.catalog_server.catalog_properties()


@dataclass
class RestNamespace:
    """A test's own namespace in the session's REST catalog."""

    servers: LakehouseServers
    namespace: str
    catalog: Catalog

    @property
    def properties(self) -> dict[str, str]:
        return self.servers.properties


def rest_catalog(servers: LakehouseServers, name: str = "rest") -> Catalog:
    return load_catalog(name, **servers.properties)


def _filesystem(table: Table) -> pafs.FileSystem:
    props = table.io.properties
    if table.metadata.location.startswith("s3://"):
        endpoint = props["s3.endpoint"]
        return pafs.S3FileSystem(access_key=props["s3.access-key-id"], secret_key=props["s3.secret-access-key"],
                                 endpoint_override=endpoint.split("://", 1)[1], scheme=endpoint.split("://", 1)[0],
                                 region=props.get("s3.region", "us-east-1"), force_virtual_addressing=False)
    return pafs.LocalFileSystem()


def read_with_duckdb(table: Table, sql: str = "SELECT * FROM t") -> pa.Table:
    """The table's current data files (from its metadata), read from storage by DuckDB.

    Fails on delete files: this reader applies none, so a table that needs them cannot be
    checked this way (and the sink writes copy-on-write, so it never should)."""
    tasks = list(table.refresh().scan().plan_files())
    with_deletes = [t.file.file_path for t in tasks if t.delete_files]
    assert not with_deletes, f"data files with delete files, which this reader cannot apply: {with_deletes}"
    paths = [t.file.file_path.split("://", 1)[1] for t in tasks]
    db = duckdb.connect()
    try:
        if paths:
            # the table's schema, not the first file's: older files lack columns added since (NULL there)
            db.register("t", ds.dataset(paths, schema=table.schema().as_arrow(), filesystem=_filesystem(table),
                                        format="parquet"))
        else:
            db.register("t", table.schema().as_arrow().empty_table())
        return db.sql(sql).to_arrow_table()
    finally:
        db.close()
