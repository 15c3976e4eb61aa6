"""Warnings of every derivation read through their specs: which field is the group's name,
which are the rule's have and need, and how they land in the one store (SQLite)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import create_engine, text

from dataplatform.warnings.kinds import kind_for, recognise, warning_kinds
from dataplatform.warnings.store import HistoryFilter, WarningStore
from tests.support.warnings import interpreter_warning, warning

HOUSING, INTERPRETERS = "housing_shortfall_warnings", "interpreter_shortage_warnings"


def change(w: dict) -> dict:
    return {"after": w, "before": None, "source": {"event_id": str(uuid.uuid4())}}


def test_every_derivations_warnings_product_is_a_kind_read_from_its_spec():
    assert list(warning_kinds()) == [HOUSING, INTERPRETERS]
    housing, courts = kind_for(HOUSING), kind_for(INTERPRETERS)
    assert (housing.name_field, housing.level_field, housing.base_level) == ("area_name", "area_level", "local_authority")
    have, need = housing.rules["shortfall"]
    assert (have.field, have.label, have.unit, need.field, need.label, need.unit) == (
        "supply", "supply", "homes", "demand", "demand", "people")
    assert (courts.name_field, courts.level_field, courts.base_level) == ("group_name", None, "court_date_language")
    have, need = courts.rules["interpreter_shortfall"]
    assert (have.field, have.unit, need.field, need.unit) == ("bookings", "interpreters", "hearings", "hearings")
    with pytest.raises(KeyError, match="no derivation declares"):
        kind_for("nope")


def test_a_record_maps_to_the_shared_columns_through_its_spec():
    court = interpreter_warning(hearing_date=dt.date(2026, 12, 2), hearings=4, bookings=1)
    assert kind_for(INTERPRETERS).row(court) == {
        "product": INTERPRETERS, "group_code": "PBOMC/2026-12-02/pol",
        "group_name": "Peterborough Magistrates' Court · 2026-12-02 · Polish", "group_level": "court_date_language",
        "have": 1, "need": 4}
    assert kind_for(HOUSING).row(warning("E12000002", "North West", demand=41, supply=12)) == {
        "product": HOUSING, "group_code": "E12000002", "group_name": "North West", "group_level": "local_authority",
        "have": 12, "need": 41}
    assert recognise(court) is kind_for(INTERPRETERS) and recognise(warning()) is kind_for(HOUSING)
    assert recognise({"warning_id": "x"}) is None


@pytest.fixture
def store(tmp_path) -> WarningStore:
    return WarningStore(engine=create_engine(f"sqlite:///{tmp_path / 'w.db'}"))


def test_both_kinds_share_one_store_and_keep_their_product_and_own_fields(store):
    store.add(change(warning("E08000012", "Liverpool")), 0, 0)
    court = store.add(change(interpreter_warning(hearing_date=dt.date(2026, 12, 2))), 0, 0).to_dict()
    assert court["product"] == INTERPRETERS and court["hearing_date"] == "2026-12-02" and court["court_code"] == "PBOMC"
    assert store.add(change(interpreter_warning()), 0, 0) is None          # same product, partition, offset
    assert {w["product"] for w in store.current()} == {HOUSING, INTERPRETERS}
    assert store.resume_offsets(HOUSING) == {0: 1} and store.resume_offsets(INTERPRETERS) == {0: 1}
    assert [r["group_name"] for r in store.history(where=HistoryFilter(area="peterborough"))] == [court["group_name"]]
    assert [r["product"] for r in store.history(where=HistoryFilter(area="PBOMC/2026-12-02/pol"))] == [INTERPRETERS]
    with pytest.raises(ValueError, match="fields of no warnings product"):
        store.add(change({"warning_id": "x", "rule_id": "r"}), 0, 9)


def test_history_kept_before_every_kind_shared_the_store_is_carried_over(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as db:   # the table of releases that followed housing's warnings only
        db.execute(text("CREATE TABLE warning_transitions (id INTEGER PRIMARY KEY, event_id VARCHAR(64) UNIQUE, "
                        "warning_id VARCHAR(200), area_code VARCHAR(20), area_name VARCHAR(200), area_level VARCHAR(20), "
                        "rule_id VARCHAR(100), severity VARCHAR(10), transition VARCHAR(20), supply INTEGER, "
                        "demand INTEGER, horizon_days INTEGER, evidence_at DATETIME, raised_at DATETIME, "
                        "message VARCHAR(500), received_at DATETIME, kafka_partition INTEGER, kafka_offset BIGINT)"))
        db.execute(text("INSERT INTO warning_transitions VALUES (7, 'e1', 'E08000012:shortfall', 'E08000012', "
                        "'Liverpool', 'local_authority', 'shortfall', 'RED', 'raised', 3, 9, 28, "
                        "'2026-03-01 10:00:00.000000', '2026-03-01 09:00:00.000000', 'RED raised  Liverpool  x', "
                        "'2026-03-01 10:00:01.000000', 0, 41)"))
    store = WarningStore(engine=engine)
    (old,) = store.history()
    assert (old["id"], old["product"], old["group_name"], old["area_code"], old["supply"], old["need"]) == (
        7, HOUSING, "Liverpool", "E08000012", 3, 9)
    assert old["evidence_at"] == "2026-03-01T10:00:00+00:00"
    assert store.resume_offsets(HOUSING) == {0: 42}                    # resumes where it was
    assert WarningStore(engine=engine).history() == [old]             # copied once
    assert store.add(change(warning("E08000003", "Manchester")), 0, 42).id == 8
