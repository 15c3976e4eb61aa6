"""Settings come from the documented environment variables."""

from dataplatform.config import Settings
from dataplatform.kafka.broker import new_cluster_id


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
