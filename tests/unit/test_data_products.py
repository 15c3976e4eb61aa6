"""Data product manifests, entity schemas, the envelope and record validation."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from dataplatform.products.envelope import ChangeEvent, entity_of, epoch_ms, event_id_of, from_epoch_ms
from dataplatform.products.manifest import ManifestError, manifest_json_schema, parse_manifest
from dataplatform.products.product import PRODUCTS_ROOT, load_products
from dataplatform.products.reference import area_name, local_authorities, prisons, region_of
from dataplatform.products.validation import RecordValidationError
from tests.support.entities import housing_unit, release_case

CLI = [sys.executable, "-m", "dataplatform.cli.__main__"]


def test_every_example_product_validates_with_topic_from_manifest():
    products = load_products()
    assert set(products) == {"social_housing_availability", "prison_releases_housing_need",
                             "area_supply_demand", "housing_shortfall_warnings",
                             "court_hearings_interpreter_need", "interpreter_bookings",
                             "interpreter_cover", "interpreter_shortage_warnings"}
    assert products["prison_releases_housing_need"].topic == "hmpps.prison_releases_housing_need.v1"
    assert products["prison_releases_housing_need"].personal_fields == {"person_ref"}
    assert products["area_supply_demand"].manifest.upstreamProducts == [
        "social_housing_availability", "prison_releases_housing_need"]
    assert products["court_hearings_interpreter_need"].topic == "hmcts.court_hearings_interpreter_need.v1"
    assert products["court_hearings_interpreter_need"].personal_fields == {"case_number", "defendant_reference"}
    assert products["interpreter_bookings"].personal_fields == {"interpreter_reference"}
    assert products["interpreter_cover"].manifest.upstreamProducts == [
        "court_hearings_interpreter_need", "interpreter_bookings"]
    assert products["interpreter_shortage_warnings"].manifest.upstreamProducts == ["interpreter_cover"]
    for p in products.values():
        parse_schema(p.value_schema)  # the generated envelope is valid Avro


def test_published_json_schema_matches_the_model():
    published = json.loads((PRODUCTS_ROOT / "manifest.schema.json").read_text())
    assert published == manifest_json_schema(), "run `dataplatform products json-schema -o schemas/manifest.schema.json`"


def test_reference_areas_use_real_codes_and_roll_up_to_regions():
    las = local_authorities()
    assert las["E08000003"].local_authority_name == "Manchester"
    assert region_of("E08000003") == "E12000002" and area_name("E12000002") == "North West"
    assert region_of("W06000015") == "W92000004" and area_name("W92000004") == "Wales"
    assert all(p.region_code in {a.region_code for a in las.values()} for p in prisons().values())


def test_reference_courts_sit_in_known_regions_and_languages_use_iso_639_3_codes():
    regions = {a.region_code for a in local_authorities().values()}
    with open(PRODUCTS_ROOT / "reference/courts.csv", newline="") as f:
        courts = list(csv.DictReader(f))
    assert len(courts) >= 15 and len({c["court_code"] for c in courts}) == len(courts)
    assert all(c["region_code"] in regions for c in courts)
    assert {"Peterborough Magistrates' Court", "Manchester Crown Court (Crown Square)"} <= {c["court_name"] for c in courts}
    with open(PRODUCTS_ROOT / "reference/languages.csv", newline="") as f:
        languages = {row["language_code"]: row["language_name"] for row in csv.DictReader(f)}
    assert len(languages) >= 12 and all(len(code) == 3 and code.islower() for code in languages)
    assert languages["pol"] == "Polish" and languages["bfi"] == "British Sign Language"


def _manifest_data() -> dict:
    return yaml.safe_load((PRODUCTS_ROOT / "hmpps/prison_releases_housing_need/manifest.yaml").read_text())


def test_broken_manifest_lists_each_bad_field():
    data = _manifest_data()
    data.update(name="Prison Releases", domain="Prisons", dataProductOwner="not-an-email", version="1")
    del data["description"]
    with pytest.raises(ManifestError) as err:
        parse_manifest(data, "manifest.yaml")
    text = str(err.value)
    for field in ("name", "domain", "dataProductOwner", "version", "description"):
        assert f"- {field}:" in text, text
    assert "HMPPS" in text  # says which domains are allowed


def test_dpia_location_required_when_dpia_required():
    data = _manifest_data()
    data.pop("dpiaLocation")
    with pytest.raises(ManifestError, match="dpiaLocation is required"):
        parse_manifest(data)


def test_envelope_round_trips_through_avro():
    product = load_products()["prison_releases_housing_need"]
    case = release_case("C1", person_ref="P-1", release_date=dt.date(2026, 12, 1),
                        updated_at=dt.datetime(2026, 11, 27, tzinfo=dt.timezone.utc))
    event = ChangeEvent("c", None, case, source_system="releases-service", position=1)
    buf = io.BytesIO()
    schema = parse_schema(product.value_schema)
    schemaless_writer(buf, schema, event.to_record())
    back = ChangeEvent.from_record(schemaless_reader(io.BytesIO(buf.getvalue()), schema))
    assert back.after == case and back.event_id == event.event_id and back.op == "c"


@pytest.mark.parametrize("op,before,after", [("c", {"a": 1}, {"a": 1}), ("u", {"a": 1}, None), ("d", None, None), ("x", None, {})])
def test_envelope_refuses_inconsistent_events(op, before, after):
    with pytest.raises(ValueError):
        ChangeEvent(op, before, after, source_system="s", position=1)


def test_an_update_may_say_only_what_the_entity_is_now():
    """A bridged domain event knows the entity after the change, not before it."""
    assert ChangeEvent("u", None, {"a": 1}, source_system="s", position=1).entity == {"a": 1}


def test_the_entity_and_event_id_read_from_a_record():
    """Every reader of a change event's record takes the entity and the event id the same way."""
    created = ChangeEvent("c", None, {"a": 1}, source_system="s", position=1, event_id="e1").to_record()
    deleted = ChangeEvent("d", {"a": 2}, None, source_system="s", position=2).to_record()
    assert entity_of(created) == {"a": 1} and entity_of(deleted) == {"a": 2}
    assert entity_of({"op": "u", "before": {"a": 1}, "after": None}) is None  # not silently the old entity
    assert event_id_of(created) == "e1"
    assert event_id_of(None) is None and event_id_of({"op": "c"}) is None and event_id_of({"source": None}) is None


def test_epoch_milliseconds_to_an_aware_utc_datetime_and_back():
    at = from_epoch_ms(1_767_225_600_123)
    assert at == dt.datetime(2026, 1, 1, 0, 0, 0, 123_000, tzinfo=dt.timezone.utc)
    assert epoch_ms(at) == 1_767_225_600_123 and from_epoch_ms(0).tzinfo is dt.timezone.utc


def test_bad_record_error_names_field_path_value_and_type():
    product = load_products()["social_housing_availability"]
    unit = housing_unit("U1", status="vacant", available_from=dt.date(2026, 12, 1),
                        provider="Manchester City Council", bedrooms="three", accessible=True,
                        updated_at=dt.datetime.now(dt.timezone.utc))
    with pytest.raises(RecordValidationError) as err:
        product.validate_entity(unit)
    problems = {p[0]: p for p in err.value.problems}
    assert problems["bedrooms"][1:] == ("three", "int")
    assert "available, reserved, let, void" in problems["status"][2]
    assert "bedrooms: got 'three' (str), expected int" in str(err.value)


# -- schemas check on a git history -------------------------------------------------------

@pytest.fixture
def product_repo(tmp_path: Path) -> Path:
    """A git repo holding a copy of the example products, committed."""
    root = tmp_path / "schemas"
    for folder in ("hmpps/social_housing_availability", "hmpps/prison_releases_housing_need"):
        shutil.copytree(PRODUCTS_ROOT / folder, root / folder)
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "products"], check=True)
    return root


def _edit_schema(root: Path, change) -> None:
    path = root / "hmpps/social_housing_availability/entity.avsc"
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema))


def _set_version(root: Path, version: str) -> None:
    path = root / "hmpps/social_housing_availability/manifest.yaml"
    path.write_text(path.read_text().replace('version: "1.1"', f'version: "{version}"'))


def _check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "schemas", "check", "--root", str(root)], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})


def test_removing_a_field_without_major_bump_fails_naming_field_and_rule(product_repo: Path):
    _edit_schema(product_repo, lambda s: s["fields"].pop(5))  # accessible
    result = _check(product_repo)
    assert result.returncode == 1
    assert "field 'accessible' was removed" in result.stdout
    assert "MAJOR" in result.stdout and "2.0" in result.stdout and "hmpps.social_housing_availability.v2" in result.stdout


def test_removing_a_field_with_major_bump_passes(product_repo: Path):
    _edit_schema(product_repo, lambda s: s["fields"].pop(5))
    _set_version(product_repo, "2.0")
    result = _check(product_repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "change: MAJOR" in result.stdout


def test_adding_optional_field_needs_minor_bump(product_repo: Path):
    _edit_schema(product_repo, lambda s: s["fields"].append(
        {"name": "floor", "type": ["null", "int"], "default": None, "doc": "Floor number."}))
    failed = _check(product_repo)
    assert failed.returncode == 1 and "MINOR" in failed.stdout and "1.2" in failed.stdout
    _set_version(product_repo, "1.2")
    assert _check(product_repo).returncode == 0


def test_changing_a_type_is_major(product_repo: Path):
    def change(s):
        s["fields"][4]["type"] = "string"  # bedrooms
    _edit_schema(product_repo, change)
    _set_version(product_repo, "1.1")
    result = _check(product_repo)
    assert result.returncode == 1 and "field 'bedrooms' changed type" in result.stdout


def test_renaming_a_product_is_refused(product_repo: Path):
    path = product_repo / "hmpps/social_housing_availability/manifest.yaml"
    path.write_text(path.read_text().replace("name: social_housing_availability", "name: housing_units"))
    result = _check(product_repo)
    assert result.returncode == 1
    assert "belongs in schemas/hmpps/housing_units" in result.stdout


def test_broken_manifest_fails_the_check_with_readable_error(product_repo: Path):
    path = product_repo / "hmpps/prison_releases_housing_need/manifest.yaml"
    path.write_text(path.read_text().replace("securityClassification: Official-Sensitive", "securityClassification: Secret"))
    result = _check(product_repo)
    assert result.returncode == 1
    assert "securityClassification" in result.stdout and "Official-Sensitive" in result.stdout
