"""The lakehouse servers the Iceberg tests run on: Apache Iceberg's REST catalog server and
an S3 store, from Maven jars. A table made through the REST protocol, appended to with
pyiceberg, reads back the same through pyiceberg and through DuckDB over the S3 files."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pyarrow as pa
import pytest

from tests.support.lakehouse import read_with_duckdb

pytestmark = pytest.mark.integration


def test_a_table_written_through_rest_reads_the_same_with_pyiceberg_and_duckdb(iceberg_rest):
    catalog, ns = iceberg_rest.catalog, iceberg_rest.namespace
    rows = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["ann", "bob", None],
                     "amount": pa.array([1.5, 2.5, 3.5], pa.float64())})
    table = catalog.create_table((ns, "people"), schema=rows.schema)
    table.append(rows)
    table.append(rows.slice(0, 1))

    assert table.metadata.location.startswith("s3://warehouse/")
    reloaded = catalog.load_table((ns, "people"))
    assert len(reloaded.snapshots()) == 2
    by_pyiceberg = reloaded.scan().to_arrow().sort_by("id").to_pylist()
    by_duckdb = read_with_duckdb(reloaded, "SELECT * FROM t ORDER BY id").to_pylist()
    assert by_pyiceberg == by_duckdb == sorted(rows.to_pylist() + rows.slice(0, 1).to_pylist(), key=lambda r: r["id"])
    # the data files really are objects in the store's bucket folder
    assert list((iceberg_rest.servers.store.buckets_dir / "warehouse").rglob("*.parquet"))


def test_the_servers_listen_on_loopback_only_the_store_wants_credentials_and_logs_no_secret(iceberg_rest):
    servers = iceberg_rest.servers
    for server in (servers.store, servers.catalog_server):
        with socket.socket() as probe:  # the port is taken on loopback...
            with pytest.raises(OSError):
                probe.bind(("127.0.0.1", server.port))
        with socket.socket() as probe:  # ...and nothing listens on the other addresses
            probe.bind(("0.0.0.0", 0))
            assert probe.connect_ex((_outward_address(), server.port)) != 0
    table = iceberg_rest.catalog.create_table((iceberg_rest.namespace, "private"), schema=pa.schema([("id", pa.int64())]))
    metadata_key = table.metadata_location.removeprefix("s3://")
    for path in ("/warehouse", f"/{metadata_key}"):  # neither the bucket nor an object without credentials
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(servers.store.url + path, timeout=5)
        assert denied.value.code == 403, path
    for server in (servers.store, servers.catalog_server):  # and the secret is in no log line
        assert servers.store.secret_access_key not in server.log_file.read_text()


def _outward_address() -> str:
    """This machine's address on a non-loopback interface (falls back to a hostname lookup)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent for a UDP connect
            return s.getsockname()[0]
        except OSError:
            return socket.gethostbyname(socket.gethostname())


def test_a_restarted_catalog_server_still_knows_its_tables(iceberg_rest):
    catalog, ns = iceberg_rest.catalog, iceberg_rest.namespace
    table = catalog.create_table((ns, "kept"), schema=pa.schema([("id", pa.int64())]))
    table.append(pa.table({"id": pa.array([7], pa.int64())}))
    iceberg_rest.servers.catalog_server.restart()
    assert catalog.load_table((ns, "kept")).scan().to_arrow().column("id").to_pylist() == [7]
