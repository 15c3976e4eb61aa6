"""Settings come from the documented environment variables."""

from dataplatform.config import Settings
from dataplatform.kafka.server_properties import new_cluster_id


def test_settings_read_documented_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", "http://registry:8081")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u:p@db/x")
    monkeypatch.setenv("DATAPLATFORM_HOME", str(tmp_path))
    s = Settings()
    assert s.kafka_bootstrap_servers == "broker:9092"
    assert s.schema_registry_url == "http://registry:8081"
    assert s.effective_database_url == "postgresql+psycopg://u:p@db/x"
    assert s.kafka_data_dir == tmp_path / "kafka"


def test_default_database_is_sqlite_under_home(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DATAPLATFORM_HOME", str(tmp_path))
    assert Settings().effective_database_url == f"sqlite:///{tmp_path / 'dataplatform.db'}"


def test_cluster_ids_follow_kafkas_format():
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


def test_registry_credentials_are_mapped_once_for_every_client():
    from pydantic import SecretStr

    from dataplatform.registry_config import registry_client_config
    from dataplatform.product_io.serialization import registry_client

    url = "http://registry:8081"
    assert registry_client_config(url, Settings()) == {"url": url}
    # the platform's own registry: the API token, as the basic-auth password (write token first)
    both = Settings(api_write_token=SecretStr("w-tok"), api_read_token=SecretStr("r-tok"))
    assert registry_client_config(url, both)["basic.auth.user.info"] == "dataplatform:w-tok"
    assert registry_client_config(url, Settings(api_read_token=SecretStr("r-tok")))["basic.auth.user.info"] == "dataplatform:r-tok"
    # another registry: Confluent's names win over the API tokens
    basic = Settings(schema_registry_basic_auth_user_info=SecretStr("svc:pw"), api_write_token=SecretStr("w-tok"))
    assert registry_client_config(url, basic)["basic.auth.user.info"] == "svc:pw"
    bearer = Settings(schema_registry_bearer_token=SecretStr("b-tok"), schema_registry_bearer_logical_cluster="lsrc-1")
    assert registry_client_config(url, bearer)["bearer.auth.token"] == "b-tok"
    assert registry_client(url, both).__class__.__name__ == "SchemaRegistryClient"  # confluent-kafka accepts it
    assert registry_client(url, bearer) is registry_client(url, bearer)  # one client per registry and credentials


def test_registry_credentials_never_travel_in_the_url():
    import pytest

    from dataplatform.registry_config import redacted_url, registry_client_config

    with pytest.raises(ValueError) as err:
        registry_client_config("http://svc:hunter2@registry:8081", Settings())
    assert "hunter2" not in str(err.value) and "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO" in str(err.value)
    assert redacted_url("http://svc:hunter2@registry:8081/x") == "http://svc:*****@registry:8081/x"


def test_database_passwords_are_masked_where_urls_are_printed():
    from dataplatform.config import shown_url

    assert shown_url("postgresql+psycopg://svc:Pa55word@db:5432/x") == "postgresql+psycopg://svc:***@db:5432/x"
    assert shown_url("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
