"""Derivation specs: the shipped ones load; every mistake a team can make is refused with the
file, the spec path and the fix; a composite group key compiles to groups that move with the
clock (no broker: dataplatform/derivations/, stream_processors/core/compiled.py)."""

from __future__ import annotations

import copy
import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
import yaml

from dataplatform.derivations.expressions import ExpressionError, compile_expression, epoch_day
from dataplatform.derivations.loading import DerivationError, get_derivation, load_derivation
from dataplatform.derivations.parse import parse
from dataplatform.products.product import PACKAGE_SCHEMAS, load_products
from dataplatform.stream_processors.core.compiled import CompiledDerivation

HOUSING_FILE = PACKAGE_SCHEMAS / "platforms/area_supply_demand/derivation.yaml"
DOC = yaml.safe_load(HOUSING_FILE.read_text())
TODAY = dt.date(2026, 12, 1)


def problems(change) -> list[str]:
    """The problems found in the housing spec after ``change(doc)``."""
    doc = copy.deepcopy(DOC)
    change(doc)
    derivation, found = parse(doc, HOUSING_FILE, load_products())
    assert derivation is None and found
    return [str(p) for p in found]


def test_the_shipped_specs_load_with_their_inputs_levels_and_rules():
    housing, interpreters = get_derivation("housing_supply_demand"), get_derivation("interpreter_cover")
    assert housing.input_products == ("social_housing_availability", "prison_releases_housing_need")
    assert housing.groups.levels == ("local_authority", "region") and housing.app_id == "dataplatform-processor"
    assert interpreters.groups.fields == ("court_code", "hearing_date", "language")
    assert interpreters.output_products == ("interpreter_cover", "interpreter_shortage_warnings")
    assert [r.id for r in interpreters.rules] == ["interpreter_shortfall"] and interpreters.horizon_days == 7


def test_a_rule_holds_for_a_duration():
    rule = get_derivation("interpreter_cover").rules[0]
    assert (rule.raise_for_ms, rule.keep_for_ms) == (10_000, 10_000)
    assert get_derivation("housing_supply_demand").rules[0].raise_for_ms == 0   # no hold unless declared
    for bad in ("soon", "15", "1.5m"):
        found = [p for p in problems(lambda d: d["rules"][0].update(raise_for=bad)) if ": rules[0].raise_for: " in p]
        assert found and "does not match" in found[0], found


@pytest.mark.parametrize("change,where,says", [
    (lambda d: d["inputs"][0].update(colour="red"), "inputs[0].colour", "unknown key 'colour'"),
    (lambda d: d["inputs"][1].update(member_when="status + 1"), "inputs[1].member_when", "type error"),
    (lambda d: d["inputs"][0].update(member_when="state == 'available'"), "inputs[0].member_when",
     "unknown name state"),
    (lambda d: d["inputs"][0].update(member_when="status"), "inputs[0].member_when", "expected a bool"),
    (lambda d: d["inputs"][0].update(counts_when="available_from <="), "inputs[0].counts_when",
     "not a valid CEL expression"),
    (lambda d: d["inputs"][0].update(group_by=["council"]), "inputs[0].group_by[0]",
     "social_housing_availability has no field 'council'"),
    (lambda d: d["inputs"][1].update(group_by=["person_ref"]), "inputs[1].group_by[0]", "personal field"),
    (lambda d: d["inputs"][1].update(counts_when="person_ref != ''"), "inputs[1].counts_when", "personal field"),
    (lambda d: d["inputs"][0].update(product="housing"), "inputs[0].product", "no data product named 'housing'"),
    (lambda d: d["figures"]["fields"].update(colour="group.code"), "figures.fields.colour",
     "area_supply_demand's schema has no field 'colour'"),
    (lambda d: d["figures"]["fields"].pop("demand"), "figures.fields", "no expression sets"),
    (lambda d: d["figures"]["fields"].update(area_code="group.area"), "figures.fields.area_code",
     "reads 'area', which is not there"),
    (lambda d: d["warnings"]["fields"].update(supply="supply + 'x'"), "warnings.fields.supply", "type error"),
    (lambda d: d["rules"][0].update(applies_to=["county"]), "rules[0].applies_to", "not a level of this spec"),
    (lambda d: d["rules"][0].update(have="homes"), "rules[0].have", "unknown name homes"),
    (lambda d: d["groups"]["roll_ups"][0].update(to="county_code"), "groups.roll_ups[0]", "no column county_code"),
    (lambda d: d["figures"].update(product="housing_shortfall_warnings"), "figures.product",
     "manifest says upstreamProducts ['area_supply_demand'], but this spec derives it from"),
])
def test_a_mistake_is_refused_naming_the_file_the_spec_path_and_the_fix(change, where, says):
    found = problems(change)
    hit = [p for p in found if f": {where}: " in p]
    assert hit, f"nothing at {where} in {found}"
    assert says in hit[0] and "platforms/area_supply_demand/derivation.yaml: " in hit[0] and "(" in hit[0]   # file, path, problem (fix)


def test_loading_a_broken_spec_raises_with_every_problem_counted(tmp_path: Path):
    bad = tmp_path / "derivation.yaml"
    doc = copy.deepcopy(DOC)
    doc["inputs"][0]["member_when"] = "status + 1"
    doc["rules"][0]["need"] = "people"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(DerivationError, match=r"inputs\[0\].member_when.*\n\(and 1 more: run `dataplatform schemas check`\)"):
        load_derivation(bad)
    bad.write_text("name: [unclosed")
    with pytest.raises(DerivationError, match="not valid YAML"):
        load_derivation(bad)


def test_expressions_are_checked_once_and_say_what_is_wrong():
    samples = {"status": "x", "available_from": 1, "today": 1}
    expression = compile_expression('status == "available" && available_from <= today + 28', samples, "bool")
    assert expression.variables == {"status", "available_from", "today"}
    assert expression({"status": "available", "available_from": 10, "today": 1}) is True
    with pytest.raises(ExpressionError, match="string \\+ int"):
        compile_expression("status + 1", samples)
    with pytest.raises(ExpressionError, match="unknown name open"):
        compile_expression("open", samples)


def hearing(hid: str, days: int, court: str = "PBOMC", language: str | None = "pol", status: str = "listed",
            needed: bool = True) -> dict:
    return {"hearing_id": hid, "case_number": "SECRET-CASE", "defendant_reference": "SECRET-DEF", "court_code": court,
            "hearing_date": TODAY + dt.timedelta(days=days), "hearing_type": "trial", "interpreter_required": needed,
            "language": language, "status": status, "updated_at": 0}


def test_a_composite_group_key_names_its_group_and_counts_within_the_window_only():
    compiled = CompiledDerivation(get_derivation("interpreter_cover"))
    ((code, level, fields),) = compiled.groups_of("court_hearings_interpreter_need", hearing("h1", 1))
    assert code == f"PBOMC/{TODAY + dt.timedelta(days=1)}/pol" and level == "court_date_language"
    view = compiled.group_view(code, level, fields)
    assert view["name"] == f"Peterborough Magistrates' Court · {TODAY + dt.timedelta(days=1)} · Polish"
    assert view["court_name"] == "Peterborough Magistrates' Court" and view["language_name"] == "Polish"
    assert view["hearing_date"] == epoch_day(TODAY) + 1          # a date, as Avro writes it
    today = epoch_day(TODAY)
    tally = Counter(compiled.contribution_of("court_hearings_interpreter_need", hearing(f"h{d}", d))
                    for d in (-1, 0, 7, 8))
    assert compiled.measures(tally, today, 7)["hearings"] == 2    # today and today + 7; not yesterday, not day 8
    assert compiled.measures(tally, today + 1, 7)["hearings"] == 2  # the window moved: day 8 in, today out
    assert "SECRET" not in repr(tally)


def test_membership_leaves_out_what_does_not_need_an_interpreter():
    compiled = CompiledDerivation(get_derivation("interpreter_cover"))
    product = "court_hearings_interpreter_need"
    assert compiled.contribution_of(product, hearing("h", 1, needed=False)) is None
    assert compiled.contribution_of(product, hearing("h", 1, status="vacated")) is None
    assert compiled.contribution_of(product, hearing("h", 1, language=None)) is None
    assert compiled.groups_of(product, hearing("h", 1, language=None)) == []   # no group without its key


def test_a_hearing_relisted_moves_between_groups():
    from tests.support.in_memory import EntityTracker, GroupBook

    compiled = CompiledDerivation(get_derivation("interpreter_cover"))
    tracker, book = EntityTracker(compiled), GroupBook(compiled)
    product = "court_hearings_interpreter_need"
    for position, days in ((1, 1), (2, 3)):
        for move in tracker.apply(product, "h1", "u", hearing("h1", days), position, position):
            book.apply(move)
    first, second = (f"PBOMC/{TODAY + dt.timedelta(days=d)}/pol" for d in (1, 3))
    today = epoch_day(TODAY)
    assert book.measures(first, today, 7)["hearings"] == 0 and book.measures(second, today, 7)["hearings"] == 1


def conditional_housing() -> CompiledDerivation:
    """The housing spec with measures of their own: a conditional count, a conditional sum
    (whose condition moves with the clock) and a derived measure over them."""
    doc = copy.deepcopy(DOC)
    doc["measures"] = {"released": {"count": "demand", "when": 'status == "released"'},
                       "bedrooms_this_week": {"sum": "bedrooms", "role": "supply", "when": "available_from <= today + 7"}}
    doc["derived"] = {"scheduled": "demand - released"}
    derivation, found = parse(doc, HOUSING_FILE, load_products())
    assert not found, found
    return CompiledDerivation(derivation)


def test_a_measure_with_its_own_condition_counts_from_the_contribution_alone():
    from tests.support.entities import MANCHESTER, NORTH_WEST, housing_unit, release_case
    from tests.support.in_memory import EntityTracker, GroupBook

    compiled = conditional_housing()
    tracker, book = EntityTracker(compiled), GroupBook(compiled)
    homes, cases = "social_housing_availability", "prison_releases_housing_need"
    sent = [(homes, "u1", housing_unit("u1", MANCHESTER, NORTH_WEST, available_from=TODAY, bedrooms=3)),
            (homes, "u2", housing_unit("u2", MANCHESTER, NORTH_WEST, available_from=TODAY + dt.timedelta(days=10),
                                       bedrooms=2)),
            (cases, "c1", release_case("c1", MANCHESTER, NORTH_WEST, "released", release_date=TODAY, person_ref="P-SECRET")),
            (cases, "c2", release_case("c2", MANCHESTER, NORTH_WEST, "scheduled", release_date=TODAY))]
    for product, key, entity in sent:
        for move in tracker.apply(product, key, "c", entity, 1, 1):
            book.apply(move)
    today = epoch_day(TODAY)
    m = book.measures(MANCHESTER, today, 28)
    assert (m["supply"], m["demand"], m["released"], m["bedrooms_this_week"], m["scheduled"]) == (2, 2, 1, 3, 1)
    assert book.measures(NORTH_WEST, today, 28)["released"] == 1            # rolled up like any count
    assert book.measures(MANCHESTER, today + 3, 28)["bedrooms_this_week"] == 5   # the clock moved: u2 within the week
    # what the condition reads travels in the contribution (no second pass, nothing personal)
    assert ("demand", epoch_day(TODAY), "released") in book.groups[MANCHESTER].entities.values()
    assert "P-SECRET" not in repr(book.groups) and "P-SECRET" not in repr(tracker.states)
    # a case housed leaves the count; one released moves from scheduled to released
    for move in tracker.apply(cases, "c2", "u", release_case("c2", MANCHESTER, NORTH_WEST, "released",
                                                             release_date=TODAY), 2, 2):
        book.apply(move)
    m = book.measures(MANCHESTER, today, 28)
    assert (m["demand"], m["released"], m["scheduled"]) == (2, 2, 0)


def test_a_lower_level_reads_its_roll_up_name_and_a_group_missing_from_reference_data_has_none():
    compiled = conditional_housing()
    (la, region) = compiled.groups_of("social_housing_availability", {"local_authority_code": "E08000003"})
    assert compiled.group_view(*la)["region_name"] == "North West" and compiled.group_view(*la)["name"] == "Manchester"
    assert compiled.group_view(*region)["region_name"] == "North West"   # a region: its own name
    ((code, level, fields),) = compiled.groups_of("social_housing_availability", {"local_authority_code": "W99"})
    view = compiled.group_view(code, level, fields)
    assert view["region"] is None and view["region_name"] is None
    record = compiled.record(compiled.derivation.figures.fields, view, {"supply": 1, "demand": 0})
    assert record["region_code"] == ""   # the shipped spec's default for an area in no region
