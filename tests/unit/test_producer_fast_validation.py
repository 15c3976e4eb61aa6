"""The compiled record check accepts only what the platform's validator accepts."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest

from dataplatform.producers.fast_validation import compile_record_check
from dataplatform.products.product import load_products
from dataplatform.products.validation import RecordValidationError, validate_record
from tests.support.entities import housing_unit

HOUSING = load_products()["social_housing_availability"]
UNIT = housing_unit("HU-1", status="let", available_from=dt.date(2026, 1, 1), provider="Onward", bedrooms=2,
                    weekly_rent=decimal.Decimal("90.00"), updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
BAD = [{"bedrooms": "2"}, {"bedrooms": True}, {"bedrooms": 2**31}, {"status": "flooded"}, {"accessible": 1},
       {"available_from": dt.datetime(2026, 1, 1)}, {"weekly_rent": 90.0}, {"unit_id": None}, {"extra": 1}]


def test_a_valid_unit_passes_both_ways() -> None:
    check = compile_record_check(HOUSING.entity_schema)
    assert check is not None
    for unit in (UNIT, {**UNIT, "weekly_rent": None, "available_from": 20000, "updated_at": 0}):
        assert check(unit)
        validate_record(unit, HOUSING.entity_schema)
    without_default = {k: v for k, v in UNIT.items() if k != "weekly_rent"}
    assert check(without_default)


@pytest.mark.parametrize("change", BAD, ids=[next(iter(c)) for c in BAD])
def test_what_the_platform_rejects_the_check_rejects(change: dict) -> None:
    check = compile_record_check(HOUSING.entity_schema)
    bad = {**UNIT, **change}
    assert not check(bad)
    with pytest.raises(RecordValidationError):
        validate_record(bad, HOUSING.entity_schema)


def test_missing_required_fields_and_non_dicts_fail() -> None:
    check = compile_record_check(HOUSING.entity_schema)
    assert not check({k: v for k, v in UNIT.items() if k != "bedrooms"})
    assert not check([UNIT])


def test_every_product_schema_compiles_or_falls_back() -> None:
    for product in load_products().values():
        check = compile_record_check(product.entity_schema)
        assert check is None or callable(check)
    nested = {"type": "record", "name": "N", "fields": [{"name": "xs", "type": {"type": "array", "items": "int"}}]}
    assert compile_record_check(nested) is None
