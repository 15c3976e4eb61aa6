"""Security: TLS + SASL/SCRAM on the client listener, topic ACLs by data product, and
secrets that never reach a log."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from dataplatform.acls import apply_grants, grants_for
from dataplatform.config import Settings
from dataplatform.kafka import BrokerSecurity, EmbeddedKafka
from dataplatform.kafka.connection import KafkaConnectionError, check_connection
from dataplatform.kafka.tls import make_ca
from dataplatform.kafka_config import client_config, redacted
from dataplatform.products.product import load_products

PASSWORDS = {"admin": "admin-Pa55-word", "housing-service": "housing-Pa55-word",
             "releases-service": "releases-Pa55-word", "dataplatform-processor": "processor-Pa55-word",
             "dataplatform-sink-sql": "sink-Pa55-word"}


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory):
    broker = EmbeddedKafka(tmp_path_factory.mktemp("secure-kafka"),
                           security=BrokerSecurity(users=PASSWORDS, acls=True))
    broker.start()
    admin = AdminClient(client_config(settings=Settings(**broker.client_settings("admin"))))
    products = load_products()
    futures = admin.create_topics([NewTopic(p.topic, 1, 1) for p in products.values()])
    for f in futures.values():
        f.result(30)
    apply_grants(admin, [g for p in products.values() for g in grants_for(p)])
    yield broker
    broker.stop()


def settings_for(broker: EmbeddedKafka, user: str, **changes) -> Settings:
    return Settings(**{**broker.client_settings(user), **changes})


def test_correct_credentials_connect_over_tls(secure_broker):
    check_connection(settings=settings_for(secure_broker, "housing-service"))


def test_wrong_password_fails_fast_and_says_so(secure_broker):
    with pytest.raises(KafkaConnectionError) as err:
        check_connection(settings=settings_for(secure_broker, "housing-service", kafka_sasl_password="nope"))
    assert err.value.reason == "auth"
    assert "KAFKA_SASL_USERNAME='housing-service'" in str(err.value) and "wrong user name or password" in str(err.value)


def test_untrusted_certificate_fails_fast_and_says_so(secure_broker, tmp_path: Path):
    other_ca, _, _ = make_ca(tmp_path, "someone else's CA")
    with pytest.raises(KafkaConnectionError) as err:
        check_connection(settings=settings_for(secure_broker, "housing-service", kafka_ssl_ca_location=other_ca))
    assert err.value.reason == "tls" and "not trusted" in str(err.value) and str(other_ca) in str(err.value)


def _produce(settings: Settings, topic: str) -> KafkaError | None:
    results: list = []
    producer = Producer({**client_config(settings=settings), "acks": "all", "enable.idempotence": True,
                         "delivery.timeout.ms": 15000})
    producer.produce(topic, key=b"k", value=b"v", on_delivery=lambda err, msg: results.append(err))
    producer.flush(30)
    assert results, "no delivery report"
    return results[0]


def test_a_service_may_write_its_own_product_but_not_another(secure_broker):
    products = load_products()
    housing = settings_for(secure_broker, "housing-service")
    assert _produce(housing, products["social_housing_availability"].topic) is None
    refused = _produce(housing, products["prison_releases_housing_need"].topic)
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def listening_ports(pid: int) -> set[int]:
    """Every TCP port process ``pid`` listens on (its sockets' inodes matched in /proc/net)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def answers_plaintext_kafka(port: int) -> bool:
    """Whether a plaintext ApiVersions request on ``port`` gets a Kafka answer."""
    import socket
    import struct

    client_id = b"probe"
    request = struct.pack(">hhih", 18, 0, 4242, len(client_id)) + client_id
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(struct.pack(">i", len(request)) + request)
        try:
            reply = s.recv(8)
        except (ConnectionResetError, TimeoutError, OSError):
            return False
    return len(reply) == 8 and struct.unpack(">ii", reply)[1] == 4242


def test_no_port_of_the_secured_broker_serves_a_plaintext_or_anonymous_client(secure_broker):
    """The back door of old: an internal PLAINTEXT listener where any local process was
    ANONYMOUS, a super user. Every port the JVM listens on must refuse a client without
    credentials, and ANONYMOUS must not be a super user."""
    from confluent_kafka import KafkaException

    ports = listening_ports(secure_broker.running_pid())
    assert secure_broker.node.port in ports and secure_broker.node.controller_port in ports
    for port in sorted(ports):
        assert not answers_plaintext_kafka(port), f"port {port} answers plaintext Kafka requests"
        for conf in ({"security.protocol": "PLAINTEXT"},
                     {"security.protocol": "SSL", "ssl.ca.location": str(secure_broker.tls.ca_cert)}):
            admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}", "log_level": 0, **conf})
            with pytest.raises(KafkaException):
                admin.list_topics(timeout=5)
    properties = secure_broker.properties_file.read_text()
    assert "ANONYMOUS" not in properties and "PLAINTEXT" not in properties.replace("SASL_PLAINTEXT", "")


def test_products_grant_cli_prints_what_the_manifest_implies():
    out = subprocess.run([sys.executable, "-m", "dataplatform.cli.__main__", "products", "grant",
                          "prison_releases_housing_need"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert "ALLOW User:releases-service WRITE on TOPIC hmpps.prison_releases_housing_need.v1" in out.stdout
    assert "ALLOW User:dataplatform-processor READ on GROUP dataplatform-processor" in out.stdout


def test_secrets_never_reach_logs_or_reprs(secure_broker, caplog):
    settings = settings_for(secure_broker, "releases-service")
    secret = PASSWORDS["releases-service"]
    caplog.set_level(logging.DEBUG)
    logging.getLogger("test").debug("client config %s, settings %r", redacted(client_config(settings=settings)), settings)
    check_connection(settings=settings)
    assert secret not in caplog.text and secret not in repr(settings) and secret not in str(settings.model_dump())
    env = {**os.environ, **{k.upper(): str(v) for k, v in secure_broker.client_settings("releases-service").items()}}
    out = subprocess.run([sys.executable, "-m", "dataplatform.cli.__main__", "-v", "products", "list", "--json"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and secret not in out.stdout + out.stderr


def test_password_can_come_from_a_file(secure_broker, tmp_path: Path):
    secret_file = tmp_path / "kafka-password"
    secret_file.write_text(PASSWORDS["housing-service"] + "\n")
    settings = settings_for(secure_broker, "housing-service", kafka_sasl_password=None, kafka_sasl_password_file=secret_file)
    check_connection(settings=settings)


def test_producer_processor_sink_path_runs_over_tls_and_sasl(secure_broker, registry_url, tmp_path: Path):
    """Releases and housing published with the SDK, joined by a Faust worker, kept by the SQL
    sink: every hop over SASL_SSL (SCRAM-SHA-512) to the secured broker."""
    import threading

    import sqlalchemy as sa

    from dataplatform.producers.publisher import Publisher
    from dataplatform.sinks.sql import SqlSink, table_name
    from dataplatform.stream_processors.config import ProcessorConfig
    from dataplatform.stream_processors.deployment.pool import start_workers
    from tests.support.entities import housing_unit, release_case
    from tests.support.kafka import unique_name
    from tests.support.waiting import wait_until

    settings = settings_for(secure_broker, "admin", schema_registry_url=registry_url)
    prefix = unique_name("tls") + "."
    config = ProcessorConfig(app_id=f"{prefix}processor", topic_prefix=prefix, datadir=str(tmp_path / "processor"),
                             partitions=2, tick_seconds=5)
    pool = start_workers(1, settings, config)
    products = load_products()
    database_url = f"sqlite:///{tmp_path / 'tls-sink.db'}"
    stop_sink = threading.Event()
    outputs = [config.topic("area_supply_demand"), config.topic("housing_shortfall_warnings")]
    sink = SqlSink(settings, topics=outputs, database_url=database_url, group=f"{prefix}sink", topic_products={
        outputs[0]: products["area_supply_demand"], outputs[1]: products["housing_shortfall_warnings"]})
    sink_thread = threading.Thread(target=sink.run, args=(stop_sink,), daemon=True)
    try:
        with Publisher(products["prison_releases_housing_need"], source_system="releases-service", settings=settings,
                       topic=config.topic("prison_releases_housing_need")) as releases:
            for i in range(6):
                releases.created(release_case(f"TLS-C{i}", "E08000003", "E12000002", person_ref=f"TLS-PERSON-{i}"))
        with Publisher(products["social_housing_availability"], source_system="housing-service", settings=settings,
                       topic=config.topic("social_housing_availability")) as housing:
            housing.created(housing_unit("TLS-U1", "E08000003", "E12000002"))
        sink_thread.start()
        engine = sa.create_engine(database_url)
        warnings_table = table_name(outputs[1])

        figures_table = table_name(outputs[0])

        def manchester(table: str, columns: str):
            if not sa.inspect(engine).has_table(table):
                return None
            with engine.connect() as db:
                return db.execute(sa.text(f"SELECT {columns} FROM {table} WHERE area_code = 'E08000003'")).first()

        figures = wait_until(lambda: (r := manchester(figures_table, "demand, supply")) and r.demand == 6 and r,
                             timeout=180, interval=1, message="Manchester's figures for all 6 cases in the SQL sink")
        assert (figures.demand, figures.supply) == (6, 1)
        warning = wait_until(lambda: manchester(warnings_table, "severity, transition"), timeout=60, interval=1,
                             message="the warning in the SQL sink")
        assert (warning.severity, warning.transition) == ("RED", "raised"), pool.log_tail()
    finally:
        stop_sink.set()
        pool.stop()
        sink_thread.join(30)
