"""`dataplatform outbox init|status|relay` on SQLite: the table, the figures, the refusals;
an outage logged once when it starts and once when it ends; a row that cannot be published."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from sqlalchemy import create_engine, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from dataplatform.cli import app
from dataplatform.config import get_settings
from dataplatform.outages import Outages
from dataplatform.producers.outbox import outbox_table, record_change
from dataplatform.producers.outbox_relay import OutboxRelay, OutboxRowError
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import get_product
from tests.support.entities import housing_unit, release_case

HOUSING = get_product("social_housing_availability")
RELEASES = get_product("prison_releases_housing_need")


def run(*args: str):  # noqa: ANN201 - click's Result
    return CliRunner().invoke(app, ["outbox", *args])


def test_init_creates_the_table_once_and_prints_its_sql_for_a_migration_tool(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'svc.db'}"
    assert run("init", "-d", url).output.startswith("table outbox_events created in sqlite:///")
    assert "already exists" in run("init", "-d", url).output
    ddl = run("init", "-d", "postgresql+psycopg://svc:secret@nowhere.invalid/housing", "--table", "app.outbox",
              "--sql").output  # connects to nothing
    assert "CREATE TABLE app.outbox" in ddl and "id BIGSERIAL NOT NULL" in ddl
    assert "CREATE INDEX ix_outbox_sent_at ON app.outbox (sent_at);" in ddl


def test_status_counts_waiting_and_published_rows_per_product(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'svc.db'}"
    run("init", "-d", url)
    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        for n in range(3):
            record_change(session, HOUSING, ChangeEvent("c", None, housing_unit(f"HU-{n}"), "housing", position=1))
        record_change(session, RELEASES, ChangeEvent("c", None, release_case("C-1"), "releases", position=1))
    sent_at = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
    t = outbox_table()
    with engine.begin() as conn:
        conn.execute(update(t).where(t.c.entity_key.in_(["HU-0", "HU-1"])).values(sent_at=sent_at))
    result = run("status", "-d", url, "--json")
    assert result.exit_code == 0, result.output
    by_product = {p["product"]: p for p in json.loads(result.output)["products"]}
    housing, releases = by_product[HOUSING.name], by_product[RELEASES.name]
    assert (housing["waiting"], housing["published"], housing["last_published"]) == (1, 2, sent_at.isoformat())
    assert (releases["waiting"], releases["published"], releases["last_published"]) == (1, 0, None)
    assert 0 <= housing["oldest_waiting_age_seconds"] < 60
    table = run("status", "-d", url).output
    assert "prison_releases_housing_need" in table and "09:30:00" in table and "never" in table  # names whole


def test_the_relay_refuses_what_it_cannot_run_with_a_fix(tmp_path, monkeypatch) -> None:
    for name in ("OUTBOX_DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'svc.db'}"
    get_settings.cache_clear()
    try:
        no_kafka = run("relay", "-d", url)
        assert no_kafka.exit_code == 2 and "set KAFKA_BOOTSTRAP_SERVERS and SCHEMA_REGISTRY_URL" in no_kafka.output
        monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
        monkeypatch.setenv("SCHEMA_REGISTRY_URL", "http://127.0.0.1:9")
        get_settings.cache_clear()
        missing = run("relay", "-d", url)
        assert missing.exit_code == 2 and "no table outbox_events" in missing.output and "outbox init" in missing.output
        unknown = run("relay", "-d", url, "--product", "no_such_product")
        assert unknown.exit_code == 2 and "social_housing_availability" in unknown.output
        nowhere = run("status")
        assert nowhere.exit_code == 2 and "--database-url" in nowhere.output
    finally:
        get_settings.cache_clear()


def test_an_outage_is_logged_when_it_starts_and_when_it_ends(caplog) -> None:
    now = [100.0]
    changes: list[tuple[str, bool]] = []
    outages = Outages(logging.getLogger("test.outages"), "relay r1", 1.0, on_change=lambda *c: changes.append(c),
                      clock=lambda: now[0])
    with caplog.at_level(logging.DEBUG, "test.outages"):
        assert outages.succeeded("database") is None  # nothing was down: nothing to say
        for _ in range(30):
            outages.failed("database", ConnectionError("refused\nmore detail"))
            now[0] += 1.0
        outages.succeeded("database")
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.levelname for r in loud] == ["ERROR", "WARNING"]
    assert "database unavailable: ConnectionError: refused." in loud[0].getMessage()
    assert "database is back after 30.0 s down" in loud[1].getMessage() and "30 failed attempts" in loud[1].getMessage()
    assert changes == [("database", False), ("database", True)]


def test_a_row_that_cannot_be_published_stops_the_relay_there_saying_which(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'svc.db'}")
    relay = OutboxRelay(engine, publishers={})  # no publisher for any product: every row is unpublishable
    with Session(engine) as session, session.begin():
        record_change(session, HOUSING, ChangeEvent("c", None, housing_unit("HU-1"), "housing", position=1))
    with pytest.raises(OutboxRowError) as raised:
        relay.run_once()
    assert str(raised.value).startswith("outbox row 1 (product 'social_housing_availability', event ")
    assert "stops at this row to keep the order" in str(raised.value) and relay.pending() == 1
