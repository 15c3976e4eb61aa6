"""Derivation and bridge specs are read and checked by one helper (``spec_files``): a spec
whose YAML is broken, or whose products do not load, comes back as problems, each kind
with its own words, never as an exception."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dataplatform.bridges import loading as bridges
from dataplatform.derivations import loading as derivations
from dataplatform.products.product import PACKAGE_SCHEMAS

BRIDGE = "hmpps/prison_releases_housing_need/bridge.yaml"
DERIVATION = "platforms/area_supply_demand/derivation.yaml"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    shutil.copytree(PACKAGE_SCHEMAS, tmp_path / "schemas", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "schemas"


@pytest.mark.parametrize("loading,spec", [(bridges, BRIDGE), (derivations, DERIVATION)], ids=["bridge", "derivation"])
def test_the_shipped_specs_check_clean(root: Path, loading, spec: str):  # noqa: ANN001
    found, problems = loading.check_file(root / spec, root)
    assert found is not None and problems == []


@pytest.mark.parametrize("loading,spec", [(bridges, BRIDGE), (derivations, DERIVATION)], ids=["bridge", "derivation"])
def test_a_key_given_twice_is_a_problem_of_the_file(root: Path, loading, spec: str):  # noqa: ANN001
    path = root / spec
    path.write_text(path.read_text() + "\nversion: 2\nversion: 3\n")
    found, problems = loading.check_file(path, root)
    assert found is None and len(problems) == 1
    assert "'version' is given twice" in problems[0].problem and problems[0].fix == "fix the YAML syntax"


def test_products_that_do_not_load_are_one_problem_in_each_kinds_words(root: Path):
    (root / "hmpps/social_housing_availability/manifest.yaml").write_text("name: [not, a, name\n")
    bridge, problems = bridges.check_file(root / BRIDGE, root)
    assert bridge is None and [(p.where, p.fix) for p in problems] == [("product", "fix the products first")]
    assert problems[0].problem.startswith("not checked: the products do not load (")
    derivation, problems = derivations.check_file(root / DERIVATION, root)
    assert derivation is None and [(p.where, p.fix) for p in problems] == [("", "fix the products first (listed above)")]
    assert problems[0].problem.startswith(f"the data products under {root} do not load: ")
