"""Outbox payloads are JSON with Avro's own ints for dates and timestamps."""

from __future__ import annotations

import datetime as dt
import decimal
import json

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

import pytest

from dataplatform.producers.outbox import OutboxEvent, create_outbox_table, event_of, from_payload, record_change, to_payload
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import get_product
from dataplatform.products.validation import RecordValidationError
from tests.support.entities import housing_unit

HOUSING = get_product("social_housing_availability")
UNIT = housing_unit("HU-9", available_from=dt.date(1970, 1, 11), provider="Onward", accessible=True,
                    weekly_rent=decimal.Decimal("101.25"), updated_at=dt.datetime(1970, 1, 1, 0, 0, 2, tzinfo=dt.UTC))


def test_dates_become_ints_and_decimals_survive_json() -> None:
    payload = to_payload(ChangeEvent("c", None, UNIT, "housing-service", position=5, ts_ms=7).to_record())
    assert payload["after"]["available_from"] == 10
    assert payload["after"]["updated_at"] == 2000
    back = from_payload(json.loads(json.dumps(payload)))
    assert back["after"]["weekly_rent"] == decimal.Decimal("101.25")
    assert back["source"]["position"] == 5


def test_record_change_adds_a_row_in_the_callers_transaction(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'svc.db'}")
    create_outbox_table(engine)
    event = ChangeEvent("c", None, UNIT, "housing-service", position=5)
    with Session(engine) as session:
        with session.begin():
            record_change(session, HOUSING, event)
        with pytest.raises(RuntimeError):
            with session.begin():
                record_change(session, HOUSING, ChangeEvent("c", None, {**UNIT, "unit_id": "HU-10"}, "h", 1))
                raise RuntimeError("the business change failed")
        rows = session.scalars(select(OutboxEvent)).all()
    assert [r.entity_key for r in rows] == ["HU-9"]  # the rolled-back change left no outbox row
    assert rows[0].event_id == event.event_id and rows[0].sent_at is None
    assert event_of(rows[0]).after["weekly_rent"] == decimal.Decimal("101.25")


def test_a_bad_record_fails_the_business_transaction(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'svc.db'}")
    create_outbox_table(engine)
    with Session(engine) as session, pytest.raises(RecordValidationError) as raised:
        record_change(session, HOUSING, ChangeEvent("c", None, {**UNIT, "bedrooms": None}, "h", 1))
    assert raised.value.field_path == "bedrooms"
