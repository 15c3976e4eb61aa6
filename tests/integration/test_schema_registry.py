"""The platform's schema registry over real HTTP, driven by confluent-kafka's own clients.

If confluent-kafka's ``SchemaRegistryClient``, ``AvroSerializer`` and ``AvroDeserializer``
work against it, producers and consumers can use it in place of Confluent's registry.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.concurrency import run_together
from tests.support.waiting import wait_for_registry
from dataplatform.config import Settings
from dataplatform.product_io import wire
from dataplatform.web.server import RunningServer

ORDER_V1 = json.dumps({
    "type": "record", "name": "Order", "namespace": "test.orders",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
        {"name": "placed_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
})
ORDER_V2_BREAKING = json.dumps({
    "type": "record", "name": "Order", "namespace": "test.orders",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "customer", "type": "string"},  # new, no default: v1 data cannot be read
    ],
})


def sqlite_settings(path: Path) -> Settings:
    return Settings(dataplatform_home=path, database_url=f"sqlite:///{path / 'registry.db'}")


@pytest.fixture
def pg_database_url(postgres_url: str) -> Iterator[str]:
    """``postgres_url`` confined to a fresh PostgreSQL schema (via search_path), dropped after."""
    schema = f"registry_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The web service on a free port, storing in SQLite or in PostgreSQL."""
    if request.param == "sqlite":
        settings = sqlite_settings(tmp_path)
    else:
        settings = Settings(dataplatform_home=tmp_path,
                            database_url=request.getfixturevalue("pg_database_url"))
    with RunningServer(settings=settings) as server:
        yield server.url


@pytest.fixture
def sqlite_registry(tmp_path: Path) -> Iterator[str]:
    with RunningServer(settings=sqlite_settings(tmp_path)) as server:
        yield server.url


def ctx(topic: str) -> SerializationContext:
    return SerializationContext(topic, MessageField.VALUE)


def order() -> dict:
    from datetime import datetime, timezone
    from decimal import Decimal

    return {"id": 7, "amount": Decimal("12.34"),
            "placed_at": datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc), "note": "fragile"}


def test_serializer_round_trip_through_the_registry(registry_url: str):
    wait_for_registry(registry_url, timeout=5)
    client = SchemaRegistryClient({"url": registry_url})
    payload = AvroSerializer(client, ORDER_V1)(order(), ctx("orders"))
    # Confluent wire format: magic byte 0, then the 4-byte schema id the registry assigned.
    schema_id = wire.schema_id_of(payload)
    assert payload[0] == 0
    assert client.get_latest_version("orders-value").schema_id == schema_id

    # A separate client (no cache) resolves the id over HTTP and decodes the record back.
    reader = AvroDeserializer(SchemaRegistryClient({"url": registry_url}))
    assert reader(payload, ctx("orders")) == order()

    assert client.get_subjects() == ["orders-value"]
    assert client.get_versions("orders-value") == [1]
    other = SchemaRegistryClient({"url": registry_url})
    assert other.register_schema("mirror-value", Schema(ORDER_V1, "AVRO")) == schema_id
    assert sorted(other.get_subjects_by_schema_id(schema_id)) == ["mirror-value", "orders-value"]
    assert {(v.subject, v.version) for v in other.get_schema_versions(schema_id)} == {
        ("mirror-value", 1), ("orders-value", 1)}
    found = other.lookup_schema("orders-value", Schema(ORDER_V1, "AVRO"))
    assert (found.schema_id, found.version) == (schema_id, 1)


def test_incompatible_change_is_refused_with_409(sqlite_registry: str):
    client = SchemaRegistryClient({"url": sqlite_registry})
    client.register_schema("orders-value", Schema(ORDER_V1, "AVRO"))
    breaking = Schema(ORDER_V2_BREAKING, "AVRO")
    assert client.test_compatibility("orders-value", breaking) is False
    with pytest.raises(SchemaRegistryError) as err:
        client.register_schema("orders-value", breaking)
    assert err.value.http_status_code == 409
    assert err.value.error_code == 409
    assert "customer" in err.value.error_message
    assert client.get_versions("orders-value") == [1]

    # Verbose compatibility test names the problem too; NONE lets the change through.
    verbose = httpx.post(f"{sqlite_registry}/compatibility/subjects/orders-value/versions/latest?verbose=true",
                         json={"schema": ORDER_V2_BREAKING})
    assert verbose.json()["is_compatible"] is False
    assert any("customer" in m for m in verbose.json()["messages"])
    assert client.set_compatibility("orders-value", "NONE") == {"compatibility": "NONE"}
    assert client.get_compatibility("orders-value") == "NONE"
    assert client.get_compatibility() == "BACKWARD"
    client.register_schema("orders-value", breaking)
    assert client.get_versions("orders-value") == [1, 2]


def test_errors_carry_confluent_codes(sqlite_registry: str):
    client = SchemaRegistryClient({"url": sqlite_registry})
    with pytest.raises(SchemaRegistryError) as err:
        client.get_latest_version("nobody-value")
    assert (err.value.http_status_code, err.value.error_code) == (404, 40401)
    with pytest.raises(SchemaRegistryError) as err:
        client.get_schema(4242)
    assert (err.value.http_status_code, err.value.error_code) == (404, 40403)
    with pytest.raises(SchemaRegistryError) as err:
        client.register_schema("bad-value", Schema('{"type": "record", "name": "X"}', "AVRO"))
    assert (err.value.http_status_code, err.value.error_code) == (422, 42201)
    client.register_schema("good-value", Schema(ORDER_V1, "AVRO"))
    with pytest.raises(SchemaRegistryError) as err:
        client.get_version("good-value", 9)
    assert (err.value.http_status_code, err.value.error_code) == (404, 40402)
    with pytest.raises(SchemaRegistryError) as err:
        client.set_compatibility(level="SIDEWAYS")
    assert (err.value.http_status_code, err.value.error_code) == (422, 42203)

    bad_version = httpx.get(f"{sqlite_registry}/subjects/good-value/versions/zero")
    assert (bad_version.status_code, bad_version.json()["error_code"]) == (422, 42202)
    assert bad_version.headers["content-type"] == "application/vnd.schemaregistry.v1+json"
    for content_type in ("application/vnd.schemaregistry+json", "application/json"):
        response = httpx.post(f"{sqlite_registry}/subjects/good-value", content=json.dumps({"schema": ORDER_V1}),
                              headers={"Content-Type": content_type})
        assert response.status_code == 200 and response.json()["version"] == 1
    raw = httpx.get(f"{sqlite_registry}/subjects/good-value/versions/latest/schema")
    assert raw.json()["name"] == "Order"

    assert client.delete_subject("good-value") == [1]
    with pytest.raises(SchemaRegistryError) as err:
        client.get_versions("good-value")
    assert err.value.error_code == 40401


def test_restarted_registry_serves_the_same_ids(tmp_path: Path):
    settings = sqlite_settings(tmp_path)
    with RunningServer(settings=settings) as server:
        client = SchemaRegistryClient({"url": server.url})
        payload = AvroSerializer(client, ORDER_V1)(order(), ctx("orders"))
        schema_id = client.get_latest_version("orders-value").schema_id
        first_url = server.url
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{first_url}/subjects", timeout=2)  # the first server really stopped

    with RunningServer(settings=settings) as again:
        fresh = SchemaRegistryClient({"url": again.url})
        assert fresh.get_latest_version("orders-value").schema_id == schema_id
        assert AvroDeserializer(fresh)(payload, ctx("orders")) == order()


def test_concurrent_registration_over_http_yields_one_id(registry_url: str):
    def register() -> int:
        client = SchemaRegistryClient({"url": registry_url})
        return client.register_schema("race-value", Schema(ORDER_V1, "AVRO"))

    ids, errors = run_together(register, threads=8)
    assert not errors, errors
    assert len(ids) == 8 and len(set(ids)) == 1
    assert SchemaRegistryClient({"url": registry_url}).get_versions("race-value") == [1]


def test_subject_names_are_checked_the_same_on_sqlite_and_postgresql(registry_url: str):
    """A name PostgreSQL would refuse (too long, NUL) must not be stored by SQLite either."""
    client = SchemaRegistryClient({"url": registry_url})
    for subject in ("s" * 256, "nul\x00inside", "tab\tinside"):
        with pytest.raises(SchemaRegistryError) as err:
            client.register_schema(subject, Schema(ORDER_V1, "AVRO"))
        assert (err.value.http_status_code, err.value.error_code) == (422, 42208), subject
    assert client.register_schema("s" * 255, Schema(ORDER_V1, "AVRO")) >= 1
    assert client.get_subjects() == ["s" * 255]


def test_the_platforms_own_clients_send_the_api_tokens(tmp_path: Path):
    """With both tokens set, `schemas register` and the SDK's registry client authenticate with them,
    and the token never appears in their output, even at debug level."""
    import os
    import subprocess
    import sys

    from pydantic import SecretStr

    from dataplatform.products.product import load_products

    write, read = "write-T0ken-4f2a", "read-T0ken-9c1e"
    settings = Settings(dataplatform_home=tmp_path, database_url=f"sqlite:///{tmp_path / 'registry.db'}",
                        api_write_token=SecretStr(write), api_read_token=SecretStr(read))
    with RunningServer(settings=settings) as server:
        env = {**os.environ, "SCHEMA_REGISTRY_URL": server.url, "API_WRITE_TOKEN": write, "API_READ_TOKEN": read}
        cli = subprocess.run([sys.executable, "-m", "dataplatform.cli.__main__", "-v", "schemas", "register"],
                             capture_output=True, text=True, env=env, timeout=120)
        assert cli.returncode == 0, cli.stderr[-2000:]
        assert cli.stdout.count("registered ") == len(load_products())
        assert write not in cli.stdout + cli.stderr and read not in cli.stdout + cli.stderr
        anonymous = httpx.get(f"{server.url}/subjects")
        assert anonymous.status_code == 401
        reader = SchemaRegistryClient({"url": server.url, "basic.auth.user.info": f"someone:{read}"})
        assert len(reader.get_subjects()) == len(load_products())

        # what the producer SDK, sinks, processor and warnings follower build from their settings
        from dataplatform.product_io.serialization import ProductSerde, registry_client

        product = load_products()["social_housing_availability"]
        client = registry_client(server.url, settings)
        assert ProductSerde(product, client).register() >= 1
        assert client.register_schema(f"auth-{uuid.uuid4().hex[:8]}-value", Schema(product.value_schema_str, "AVRO")) >= 1
