"""The mistakes suite: plausible mistakes a team makes in a copy of a shipped spec and its
products, each refused by `dataplatform schemas check` (exit 1) with a line naming the
file, the place in the spec and the fix. No mistake here may ever be accepted: a spec that
passes the check is the only review it gets before it publishes figures people act on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import pytest
import yaml
from typer.testing import CliRunner

from dataplatform.cli.main import app
from dataplatform.products.product import PACKAGE_SCHEMAS

HOUSING = "platforms/area_supply_demand/derivation.yaml"
INTERPRETERS = "platforms/interpreter_cover/derivation.yaml"
FIGURES_AVSC = "platforms/area_supply_demand/entity.avsc"
WARNINGS_AVSC = "platforms/housing_shortfall_warnings/entity.avsc"


def spec(path: str, change: Callable[[dict], None]) -> Callable[[Path], str]:
    def edit(root: Path) -> str:
        doc = yaml.safe_load((root / path).read_text())
        change(doc)
        (root / path).write_text(yaml.safe_dump(doc, sort_keys=False))
        return path
    return edit


def housing(change: Callable[[dict], None]) -> Callable[[Path], str]:
    return spec(HOUSING, change)


def avsc(path: str, change: Callable[[list[dict]], None]) -> Callable[[Path], str]:
    """An edit of a derived product's schema; the spec that writes it is the file named."""
    def edit(root: Path) -> str:
        schema = json.loads((root / path).read_text())
        change(schema["fields"])
        (root / path).write_text(json.dumps(schema))
        return HOUSING
    return edit


def text(path: str, old: str, new: str) -> Callable[[Path], str]:
    def edit(root: Path) -> str:
        content = (root / path).read_text()
        assert old in content
        (root / path).write_text(content.replace(old, new, 1))
        return path
    return edit


def field(fields: list[dict], name: str) -> dict:
    return next(f for f in fields if f["name"] == name)


def measures(**named) -> Callable[[dict], None]:
    return lambda d: d.setdefault("measures", {}).update(named)


MISTAKES = {
    # names and keys
    "unknown key, misspelt": (housing(lambda d: d["inputs"][0].update(counts_whn="true")),
                              "inputs[0].counts_whn", "did you mean 'counts_when'"),
    "group_by field misspelt": (housing(lambda d: d["inputs"][0].update(group_by=["local_authority"])),
                                "inputs[0].group_by[0]", "did you mean 'local_authority_code'"),
    "input product misspelt": (housing(lambda d: d["inputs"][1].update(product="prison_release_housing_need")),
                               "inputs[1].product", "did you mean 'prison_releases_housing_need'"),
    "figures product misspelt": (housing(lambda d: d["figures"].update(product="area_supply_demnd")),
                                 "figures.product", "did you mean 'area_supply_demand'"),
    "output field not in the schema": (housing(lambda d: d["figures"]["fields"].update(region="group.region")),
                                       "figures.fields.region", "did you mean 'region_code'"),
    "group attribute misspelt": (housing(lambda d: d["figures"]["fields"].update(area_name="group.nme")),
                                 "figures.fields.area_name", "did you mean 'name'"),
    "rule level misspelt": (housing(lambda d: d["rules"][0].update(applies_to=["local_authority", "regions"])),
                            "rules[0].applies_to", "did you mean 'region'"),
    "rule reads a measure that does not exist": (housing(lambda d: d["rules"][0].update(have="suply")),
                                                 "rules[0].have", "did you mean 'supply'"),
    "duplicate key in YAML": (text(HOUSING, "    supply: supply\n    demand: demand\n\n# coverage",
                                   "    supply: supply\n    demand: demand\n    supply: demand\n\n# coverage"),
                              "spec", "given twice"),
    # values and types in expressions
    "unquoted string literal": (housing(lambda d: d["inputs"][0].update(member_when="status == available")),
                                "inputs[0].member_when", 'quote it: "available"'),
    "enum value misspelt in a literal": (housing(lambda d: d["inputs"][0].update(member_when='status == "availble"')),
                                         "inputs[0].member_when", "did you mean 'available'"),
    "date compared with a date string": (housing(lambda d: d["inputs"][0].update(
        counts_when='available_from <= "2026-12-31"')), "inputs[0].counts_when", "today + N"),
    "YAML boolean where an expression goes": (housing(lambda d: d["inputs"][0].update(member_when=True)),
                                              "inputs[0].member_when", "quote it"),
    "personal field as the group key": (housing(lambda d: d["inputs"][1].update(group_by=["person_ref"])),
                                        "inputs[1].group_by[0]", "personal field"),
    "personal field in counts_when": (housing(lambda d: d["inputs"][1].update(counts_when='person_ref != ""')),
                                      "inputs[1].counts_when", "personal field"),
    # measures
    "sum named like a role's count": (housing(measures(supply={"sum": "bedrooms", "role": "supply"})),
                                      "measures.supply", "already the count of role 'supply'"),
    "derived named like a sum": (housing(lambda d: (measures(bedrooms={"sum": "bedrooms", "role": "supply"})(d),
                                                    d.update(derived={"bedrooms": "supply * 2"}))),
                                 "derived.bedrooms", "already the measure measures.bedrooms"),
    "measure named like a name expressions use": (housing(measures(today={"count": "supply"})),
                                                  "measures.today", "a name expressions already use"),
    "sum of a text field": (housing(measures(providers={"sum": "provider", "role": "supply"})),
                            "measures.providers.sum", "not a numeric field"),
    "sum field misspelt": (housing(measures(rooms={"sum": "bedroom", "role": "supply"})),
                           "measures.rooms.sum", "did you mean 'bedrooms'"),
    "conditional count reads a personal field": (housing(measures(named={"count": "demand", "when": 'person_ref != ""'})),
                                                 "measures.named.when", "personal field"),
    "count of a role that does not exist": (housing(measures(awaiting={"count": "demands"})),
                                            "measures.awaiting.count", "did you mean 'demand'"),
    "a measure both count and sum": (housing(measures(both={"count": "supply", "sum": "bedrooms", "role": "supply"})),
                                     "measures.both", "either a count or a sum"),
    "derived divides by a count that can be 0": (housing(lambda d: d.update(derived={"ratio": "supply / demand"})),
                                                 "derived.ratio", "divides by zero"),
    "derived gives int at 0, double otherwise": (housing(lambda d: d.update(
        derived={"cover": "demand == 0 ? 0 : double(supply) / double(demand)"})), "derived.cover", "same type"),
    # outputs against the products' Avro schemas
    "double into an int field": (housing(lambda d: d["figures"]["fields"].update(supply="double(supply) * 1.5")),
                                 "figures.fields.supply", "int(...)"),
    "string into an int field": (housing(lambda d: d["warnings"]["fields"].update(demand="group.name")),
                                 "warnings.fields.demand", "gives string"),
    "date into a string field": (spec(INTERPRETERS, lambda d: d["warnings"]["fields"].update(
        group_name="group.hearing_date")), "warnings.fields.group_name", "gives int"),
    "nullable roll-up into a required field": (housing(lambda d: d["figures"]["fields"].update(
        region_code="group.region")), "figures.fields.region_code", "can be null"),
    "roll-up level missing from the figures enum": (avsc(FIGURES_AVSC, lambda f: field(f, "area_level")["type"].update(
        symbols=["local_authority"])), "figures.fields.area_level", "'region', which is not a symbol"),
    "roll-up level missing from the warnings enum": (avsc(WARNINGS_AVSC, lambda f: field(f, "area_level")["type"].update(
        symbols=["local_authority", "county"])), "warnings.fields.area_level", "not a symbol"),
    "a group code into an enum": (housing(lambda d: d["figures"]["fields"].update(area_level="group.code")),
                                  "figures.fields.area_level", "not a symbol"),
    "warnings product without raised_at": (avsc(WARNINGS_AVSC, lambda f: f.remove(field(f, "raised_at"))),
                                           "warnings.product", "lacks 'raised_at'"),
    "figures product without as_of": (avsc(FIGURES_AVSC, lambda f: f.remove(field(f, "as_of"))),
                                      "figures.product", "lacks 'as_of'"),
    "as_of too small for milliseconds": (avsc(FIGURES_AVSC, lambda f: field(f, "as_of").update(type="int")),
                                         "figures.product", "declare it as"),
    "severity enum without RED": (avsc(WARNINGS_AVSC, lambda f: field(f, "severity")["type"].update(
        symbols=["NONE", "AMBER"])), "warnings.product", "'RED'"),
    "raised_at not nullable": (avsc(WARNINGS_AVSC, lambda f: field(f, "raised_at").update(type="long", default=0)),
                               "warnings.product", "can be null"),
    "a schema field no expression sets": (housing(lambda d: d["figures"]["fields"].pop("demand")),
                                          "figures.fields", "no expression sets"),
    # levels, reference data, rules
    "roll-up name clashes with a name part": (housing(lambda d: d["groups"]["roll_ups"][0].update(
        name="local_authority_name", to="local_authority_code")), "groups", "names two things"),
    "reference data misspelt": (housing(lambda d: d["groups"]["roll_ups"][0].update(reference="area")),
                                "groups.roll_ups[0]", "/reference"),
    "a rule over another window": (housing(lambda d: d["rules"][0].update(horizon_days=14)),
                                   "rules[0].horizon_days", "another window"),
    "thresholds the wrong way round": (housing(lambda d: d["rules"][0].update(red_below=1.5)), "rules[0]",
                                       "red_below is above amber_below"),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pristine") / "schemas"
    shutil.copytree(PACKAGE_SCHEMAS, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return root


def check(root: Path):
    return CliRunner().invoke(app, ["schemas", "check", "--root", str(root), "--against", ""])


def test_the_copy_passes_before_any_mistake(pristine):
    result = check(pristine)
    assert result.exit_code == 0, result.output


def test_there_are_at_least_thirty_mistakes():
    assert len(MISTAKES) >= 30


@pytest.mark.parametrize("name", MISTAKES)
def test_a_mistake_is_refused_with_the_file_the_place_and_the_fix(name, pristine, tmp_path):
    edit, where, says = MISTAKES[name]
    root = tmp_path / "schemas"
    shutil.copytree(pristine, root)
    file = edit(root)
    result = check(root)
    assert result.exit_code == 1, f"{name}: accepted\n{result.output}"
    lines = [line.strip().removeprefix("- ") for line in result.output.splitlines()]
    hit = [line for line in lines if f"{file}: {where}: " in line]
    assert hit, f"{name}: nothing at {file}: {where} in\n{result.output}"
    assert any(says in line and line.endswith(")") and " (" in line for line in hit), \
        f"{name}: no {says!r} with a fix in {hit}"


def test_missing_reference_data_names_the_folder_searched(pristine, tmp_path):
    root = tmp_path / "elsewhere"
    shutil.copytree(pristine, root)
    housing(lambda d: d["groups"]["roll_ups"][0].update(reference="regions"))(root)
    output = check(root).output
    assert f"there is no regions.csv in {root / 'reference'} (known: areas, courts, languages, prisons)" in output


def test_list_never_cuts_a_name_and_show_prints_every_rule_setting(pristine):
    listed = CliRunner().invoke(app, ["derivations", "list", "--root", str(pristine)], env={"COLUMNS": "40"})
    assert listed.exit_code == 0 and "  warnings  interpreter_shortage_warnings\n" in listed.output
    shown = CliRunner().invoke(app, ["derivations", "show", "housing_supply_demand", "--root", str(pristine)])
    for setting in ("min_need: 5", "red_below: 1.0", "amber_below: 1.2", "clear_margin: 0.1", "clear_after: 2",
                    "horizon_days: 28"):
        assert f"           {setting}\n" in shown.output, shown.output
