"""The schema registry's logic (no HTTP): ids, versions, compatibility levels, concurrency."""

from __future__ import annotations

import json

import pytest

from dataplatform.registry.errors import (
    IncompatibleSchema,
    InvalidCompatibilityLevel,
    InvalidSchema,
    InvalidVersion,
    SchemaNotFound,
    SubjectNotFound,
    VersionNotFound,
)
from dataplatform.registry.store import SchemaRegistryStore
from tests.support.concurrency import run_together


def record(*fields: dict, name: str = "Person") -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "test", "fields": list(fields)})


ID = {"name": "id", "type": "long"}
NAME = {"name": "name", "type": "string"}
NAME_AS_INT = {"name": "name", "type": "int"}
EMAIL_DEFAULT = {"name": "email", "type": ["null", "string"], "default": None}
AGE_NO_DEFAULT = {"name": "age", "type": "int"}

V1 = record(ID, NAME)
ADD_WITH_DEFAULT = record(ID, NAME, EMAIL_DEFAULT)
ADD_WITHOUT_DEFAULT = record(ID, NAME, AGE_NO_DEFAULT)
REMOVE_NAME = record(ID)
NAME_TO_INT = record(ID, NAME_AS_INT)


@pytest.fixture
def store(tmp_path) -> SchemaRegistryStore:
    s = SchemaRegistryStore(f"sqlite:///{tmp_path / 'registry.db'}")
    s.create_tables()
    yield s
    s.close()


def test_same_schema_under_two_subjects_has_one_id_and_reregistering_adds_no_version(store):
    first = store.register("a-value", V1)
    assert store.register("b-value", V1) == first
    # Whitespace and key order do not make a different schema.
    respelled = json.dumps({"fields": [ID, NAME], "namespace": "test", "name": "Person", "type": "record"},
                           indent=4)
    assert store.register("a-value", respelled) == first
    assert store.versions("a-value") == [1]
    assert store.subjects() == ["a-value", "b-value"]
    assert store.subjects_for_id(first) == ["a-value", "b-value"]
    assert json.loads(store.get_by_id(first).schema) == json.loads(V1)


def test_versions_lookup_latest_and_delete(store):
    first = store.register("p-value", V1)
    second = store.register("p-value", ADD_WITH_DEFAULT)
    assert second != first
    assert store.versions("p-value") == [1, 2]
    assert store.get_version("p-value", "latest").id == second
    assert store.get_version("p-value", 1).id == first
    assert store.get_version("p-value", "2").version == 2
    assert store.lookup("p-value", V1).version == 1
    with pytest.raises(VersionNotFound):
        store.get_version("p-value", 3)
    with pytest.raises(InvalidVersion):
        store.get_version("p-value", "zero")
    with pytest.raises(InvalidVersion):
        store.get_version("p-value", 0)
    with pytest.raises(SchemaNotFound):
        store.lookup("p-value", REMOVE_NAME)
    with pytest.raises(SchemaNotFound):
        store.get_by_id(999)
    assert store.delete_subject("p-value") == [1, 2]
    with pytest.raises(SubjectNotFound) as err:
        store.versions("p-value")
    assert err.value.error_code == 40401 and "p-value" in err.value.message
    # Ids stay allocated: the same schema comes back with the same id.
    assert store.register("p-value", V1) == first
    assert store.versions("p-value") == [1]


def test_backward_default_accepts_added_field_with_default_and_refuses_breaking_changes(store):
    assert store.get_compatibility() == "BACKWARD"
    store.register("s-value", V1)
    for breaking, field in [(ADD_WITHOUT_DEFAULT, "age"), (NAME_TO_INT, "/fields/1")]:
        with pytest.raises(IncompatibleSchema) as err:
            store.register("s-value", breaking)
        assert err.value.http_status == 409 and err.value.error_code == 409
        assert field in err.value.message
    assert store.versions("s-value") == [1]
    # Removing a field is fine for BACKWARD (the new reader ignores it)...
    store.register("s-value", ADD_WITH_DEFAULT)
    assert store.versions("s-value") == [1, 2]


def test_forward_refuses_removing_a_field_old_readers_need(store):
    store.set_compatibility("FORWARD", "f-value")
    store.register("f-value", V1)
    with pytest.raises(IncompatibleSchema) as err:
        store.register("f-value", REMOVE_NAME)  # old reader needs "name", has no default
    assert "name" in err.value.message
    # Adding a field without default is FORWARD-compatible: old readers ignore it.
    store.register("f-value", ADD_WITHOUT_DEFAULT)
    assert store.versions("f-value") == [1, 2]


def test_full_needs_both_directions_and_none_accepts_anything(store):
    store.set_compatibility("full", "full-value")
    assert store.get_compatibility("full-value") == "FULL"
    store.register("full-value", V1)
    with pytest.raises(IncompatibleSchema):
        store.register("full-value", ADD_WITHOUT_DEFAULT)  # breaks BACKWARD
    with pytest.raises(IncompatibleSchema):
        store.register("full-value", REMOVE_NAME)  # breaks FORWARD
    store.register("full-value", ADD_WITH_DEFAULT)

    store.set_compatibility("NONE", "none-value")
    store.register("none-value", V1)
    store.register("none-value", NAME_TO_INT)
    assert store.versions("none-value") == [1, 2]
    # The subject level overrides the global one, which is untouched.
    assert store.get_compatibility() == "BACKWARD"
    assert store.get_compatibility("other", default_to_global=False) is None


def test_transitive_checks_every_version_not_just_the_latest(store):
    v1 = record(ID, NAME)
    v2 = record(ID)  # drops name: BACKWARD-compatible with v1
    plain, transitive = "plain-value", "trans-value"
    store.set_compatibility("BACKWARD_TRANSITIVE", transitive)
    for subject in (plain, transitive):
        store.register(subject, v1)
        store.register(subject, v2)
    # v3 reads v2's data (name is absent there, so its default is used) but not v1's, where
    # name was written as a string: only the transitive subject compares against v1.
    v3_default = record(ID, {"name": "name", "type": "int", "default": 0})
    store.register(plain, v3_default)
    assert store.versions(plain) == [1, 2, 3]
    with pytest.raises(IncompatibleSchema) as err:
        store.register(transitive, v3_default)
    assert "version 1" in err.value.message and "/fields/1" in err.value.message
    assert store.versions(transitive) == [1, 2]
    assert store.test_compatibility(transitive, v3_default, "latest").is_compatible
    assert not store.test_compatibility(transitive, v3_default, 1).is_compatible
    assert not store.test_compatibility(transitive, v3_default, None).is_compatible


@pytest.mark.parametrize("level", ["FORWARD", "FULL"])
def test_forward_and_full_transitive_check_old_readers_of_every_version(store, level):
    v1 = record(ID, NAME)
    v2 = record(ID, {"name": "name", "type": "string", "default": ""})
    v3 = record(ID)  # a v2 reader defaults "name"; a v1 reader has no default for it
    plain, transitive = f"{level.lower()}-value", f"{level.lower()}-transitive-value"
    store.set_compatibility(level, plain)
    store.set_compatibility(f"{level}_TRANSITIVE", transitive)
    for subject in (plain, transitive):
        store.register(subject, v1)
        store.register(subject, v2)
    store.register(plain, v3)
    assert store.versions(plain) == [1, 2, 3]
    with pytest.raises(IncompatibleSchema) as err:
        store.register(transitive, v3)
    assert "FORWARD" in err.value.message and "version 1" in err.value.message
    assert store.versions(transitive) == [1, 2]


def test_invalid_schema_and_level_are_clear_errors(store):
    with pytest.raises(InvalidSchema) as err:
        store.register("x-value", '{"type": "record", "name": "R", "fields": [{"name": "a", "type": "strin"}]}')
    assert err.value.error_code == 42201 and "strin" in err.value.message
    with pytest.raises(InvalidSchema):
        store.register("x-value", "not json")
    with pytest.raises(InvalidSchema) as err:
        store.register("x-value", '{"type": "object"}', schema_type="JSON")
    assert "JSON" in err.value.message
    with pytest.raises(InvalidCompatibilityLevel) as err:
        store.set_compatibility("SIDEWAYS")
    assert err.value.error_code == 42203
    with pytest.raises(SubjectNotFound):
        store.versions("x-value")


def test_concurrent_registration_of_one_schema_yields_one_id_and_one_version(store):
    ids, errors = run_together(lambda: store.register("race-value", V1), threads=8)
    assert not errors
    assert len(ids) == 8 and len(set(ids)) == 1
    assert store.versions("race-value") == [1]


def test_state_survives_a_new_store_on_the_same_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    first = SchemaRegistryStore(url)
    first.create_tables()
    schema_id = first.register("keep-value", V1)
    first.set_compatibility("FULL", "keep-value")
    first.close()
    again = SchemaRegistryStore(url)
    again.create_tables()
    assert again.get_version("keep-value", 1).id == schema_id
    assert again.get_compatibility("keep-value") == "FULL"
    again.close()
