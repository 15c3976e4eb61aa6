"""Session fixtures: one real Kafka broker for the whole run, a PostgreSQL URL, a unique
topic name per test, and the lakehouse (an Iceberg REST catalog on an S3 store).

Integration tests fail (never skip) when the broker cannot start: the fixture raises with
the broker's log tail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dataplatform.config import Settings
from dataplatform.kafka.provider import kafka_bootstrap
from tests.support.kafka import create_topic, unique_name
from tests.support.lakehouse import LakehouseServers, RestNamespace, rest_catalog


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's Kafka, chosen as everywhere else: KAFKA_BOOTSTRAP_SERVERS, else
    Testcontainers when DATAPLATFORM_KAFKA=testcontainers, else the embedded broker."""
    with kafka_bootstrap(tmp_path_factory.mktemp("kafka"), Settings()) as address:
        yield address


@pytest.fixture(scope="session")
def aws_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real SNS/SQS server for the session (moto's standalone server, a child process on loopback)."""
    from dataplatform.aws_local import LocalAws

    with LocalAws(tmp_path_factory.mktemp("aws") / "moto.log") as server:
        yield server.url


@pytest.fixture
def topic(bootstrap: str, request: pytest.FixtureRequest) -> str:
    """A fresh single-partition topic named after the test."""
    return create_topic(bootstrap, unique_name(request.node.name[:40].replace("[", "-").rstrip("]")))


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """PostgreSQL for integration tests; `make test` starts it and sets TEST_DATABASE_URL."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.fail("TEST_DATABASE_URL is not set: run the suite with `make test`, which starts PostgreSQL")
    return url


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The platform's schema registry over real HTTP, on a SQLite file, for the session
    (SCHEMA_REGISTRY_URL wins when set, e.g. a real Confluent registry)."""
    if os.environ.get("SCHEMA_REGISTRY_URL"):
        yield os.environ["SCHEMA_REGISTRY_URL"]
        return
    from dataplatform.web.server import RunningServer

    db = tmp_path_factory.mktemp("registry") / "registry.db"
    settings = Settings(database_url=f"sqlite:///{db}")
    with RunningServer(settings=settings) as server:
        yield server.url


@pytest.fixture(scope="session")
def lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LakehouseServers]:
    """Apache Iceberg's REST catalog server and an S3 store (S3Proxy), from Maven jars, for the
    session. Tests that stop one (outages) must start it again before they end."""
    servers = LakehouseServers(tmp_path_factory.mktemp("lakehouse"))
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def iceberg_rest(lakehouse: LakehouseServers, request: pytest.FixtureRequest) -> Iterator[RestNamespace]:
    """The session's REST catalog with a fresh namespace for this test; both servers are
    running again afterwards whatever the test stopped."""
    catalog = rest_catalog(lakehouse)
    namespace = unique_name(request.node.name[:30]).lower().replace("-", "_").replace("[", "_").replace("]", "")
    catalog.create_namespace(namespace)
    yield RestNamespace(lakehouse, namespace, catalog)
    lakehouse.start()
