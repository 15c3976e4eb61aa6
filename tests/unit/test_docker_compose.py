"""docker-compose.yml offers every service the platform needs, on the ports and with the
variable names that the settings object reads."""

from pathlib import Path

import yaml

from dataplatform.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_kafka_registry_and_postgres_with_healthchecks_and_volumes():
    services = compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "schema-registry" in services and "postgres" in services
    for name in ("kafka", "schema-registry", "postgres"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    assert {"kafka-data", "postgres-data"} <= set(compose()["volumes"])


def test_documented_variables_are_settings_fields_and_match_published_ports():
    text = (ROOT / "docker-compose.yml").read_text()
    exports = dict(
        line.split("export ", 1)[1].split("=", 1)
        for line in text.splitlines() if line.startswith("#   export ")
    )
    fields = {name.upper() for name in Settings.model_fields}
    assert set(exports) <= fields, f"variables the settings object does not read: {set(exports) - fields}"
    services = compose()["services"]
    published = {int(p.split(":")[0]) for s in services.values() for p in s.get("ports", [])}
    assert int(exports["KAFKA_BOOTSTRAP_SERVERS"].rsplit(":", 1)[1]) in published
    assert int(exports["SCHEMA_REGISTRY_URL"].rsplit(":", 1)[1]) in published
    assert int(exports["DATABASE_URL"].rsplit(":", 1)[1].split("/")[0]) in published
    pg = services["postgres"]["environment"]
    assert f"{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@" in exports["DATABASE_URL"]
