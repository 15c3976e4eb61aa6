"""Avro entity schemas as Iceberg schemas (sinks/iceberg/schema.py): nesting, logical types,
nullability, personal fields, and a new optional field merged into a table by name."""

from __future__ import annotations

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.types import (DateType, DecimalType, FixedType, IntegerType, ListType, MapType, StringType, StructType,
                             TimestampType, TimestamptzType, TimeType)

from dataplatform.sinks.columns import PersonalDataPolicy
from dataplatform.sinks.iceberg.schema import EntityShape
from dataplatform.sinks.iceberg.tables import ensure_table
from tests.support.sinks import ENTITY, EXTRA_FIELD

EDGES = {"type": "record", "name": "Edge", "namespace": "test", "fields": [
    {"name": "id", "type": "string"},
    {"name": "when_local", "type": {"type": "long", "logicalType": "local-timestamp-micros"}},
    {"name": "at", "type": {"type": "int", "logicalType": "time-millis"}},
    {"name": "digest", "type": {"type": "fixed", "name": "Digest", "size": 4}},
    {"name": "either", "type": ["null", "string", "long"]},
    {"name": "inner", "type": {"type": "record", "name": "Inner", "fields": [
        {"name": "anything", "type": ["int", "string"]}]}},
    {"name": "again", "type": ["null", "test.Inner"]},
    {"name": "inners", "type": {"type": "array", "items": "Inner"}},
]}


def fields(schema):
    return {f.name: f for f in schema.fields}


def test_types_nesting_and_nullability_follow_the_avro_schema():
    shape = EntityShape(ENTITY, PersonalDataPolicy({"person_ref"}))
    current, history = fields(shape.schema(history=False)), fields(shape.schema(history=True))
    assert "person_ref" not in current   # personal: left out
    assert current["amount"].field_type == DecimalType(10, 2) and current["amount"].required
    assert current["due"].field_type == DateType() and current["updated_at"].field_type == TimestamptzType()
    assert current["status"].field_type == StringType()   # an enum
    assert not current["note"].required   # ["null", "string"]
    address = current["address"].field_type
    assert isinstance(address, StructType) and [f.name for f in address.fields] == ["town", "postcode"]
    assert address.fields[0].required and not address.fields[1].required
    assert isinstance(current["tags"].field_type, ListType) and isinstance(current["counts"].field_type, MapType)
    assert current["counts"].field_type.value_type == IntegerType()
    assert current["_key"].required and shape.schema(history=False).identifier_field_names() == {"_key"}
    # a tombstone has no entity: every entity field of the history table is optional
    assert not any(history[name].required for name in current if not name.startswith("_"))
    assert history["_kafka_offset"].required and history["_ts"].field_type == TimestamptzType()
    ids = [f.field_id for f in shape.schema(history=True).columns] + [f.field_id for f in address.fields]
    assert len(ids) == len(set(ids))   # field ids unique, nested ones included


def test_edge_types_and_json_text_for_unions_of_several_types():
    shape = EntityShape(EDGES, PersonalDataPolicy(set()))
    f = fields(shape.schema(history=False))
    assert f["when_local"].field_type == TimestampType() and f["at"].field_type == TimeType()
    assert f["digest"].field_type == FixedType(4)
    assert f["either"].field_type == StringType() and not f["either"].required
    assert isinstance(f["again"].field_type, StructType) and not f["again"].required   # a named type used again
    row = shape.values({"id": "a", "either": 5, "inner": {"anything": "x"}, "again": None,
                        "inners": [{"anything": 1}, {"anything": "two"}]})
    assert row["either"] == "5" and row["inner"] == {"anything": '"x"'}
    assert row["inners"] == [{"anything": "1"}, {"anything": '"two"'}]
    assert shape.values(None) == {name: None for name in f if not name.startswith("_")}


def test_personal_fields_hashed_when_allowed():
    shape = EntityShape(ENTITY, PersonalDataPolicy({"person_ref"}, key=b"k"))
    row = shape.values({"person_ref": "PERSON-1-SECRET", "case_id": "c"})
    assert len(row["person_ref"]) == 64 and "SECRET" not in row["person_ref"]


def test_a_new_optional_field_evolves_the_table_in_place(tmp_path):
    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path / 'c.db'}", warehouse=f"file://{tmp_path}")
    v1 = EntityShape(ENTITY, PersonalDataPolicy({"person_ref"}))
    table = ensure_table(catalog, ("hmpps", "cases_v1"), v1.schema(history=False), False)
    ids_before = {f.name: f.field_id for f in table.schema().fields}
    v11 = EntityShape({**ENTITY, "fields": [*ENTITY["fields"], EXTRA_FIELD]}, PersonalDataPolicy({"person_ref"}))
    table = ensure_table(catalog, ("hmpps", "cases_v1"), v11.schema(history=False), False)
    after = {f.name: f for f in table.schema().fields}
    assert after["priority"].field_type == IntegerType() and not after["priority"].required
    assert {n: after[n].field_id for n in ids_before} == ids_before   # existing ids kept, nothing rewritten
    assert len(table.schemas()) == 2 and table.current_snapshot() is None
