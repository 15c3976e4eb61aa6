"""The installed project is one package, `dataplatform`: the wheel holds nothing else at its
top level (no `schemas` or `sinks` to collide with other packages), ships the data products'
files, and works from a clean virtual environment."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_FOLDERS = {"producers": "dataplatform/producers", "stream_processors": "dataplatform/stream_processors",
                "schemas": "dataplatform/schemas", "sinks": "dataplatform/sinks", "dataplatform": "dataplatform"}
DATA_FILES = [
    "dataplatform/schemas/manifest.schema.json",
    "dataplatform/schemas/hmpps/social_housing_availability/manifest.yaml",
    "dataplatform/schemas/hmpps/social_housing_availability/entity.avsc",
    "dataplatform/schemas/platforms/area_supply_demand/manifest.yaml",
    "dataplatform/schemas/reference/areas.csv",
    "dataplatform/schemas/derivation.schema.json",
    "dataplatform/schemas/platforms/area_supply_demand/derivation.yaml",
    "dataplatform/kafka/pom.xml",
    "dataplatform/warnings/runbooks/shortfall.md",
    "dataplatform/web/templates/base.html",
]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the sources (the build writes build/ and egg-info next to
    the sources; the copy keeps the working tree clean)."""
    repo = Path(__file__).resolve().parents[2]
    source = tmp_path_factory.mktemp("source") / "dataplatform"
    shutil.copytree(repo, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", ".dataplatform", "build", "dist", "*.egg-info", ".pytest_cache",
        "test-artifacts", "tests", "bench"))
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = out.glob("dataplatform-*.whl")
    return wheel


def test_the_wheel_has_one_top_level_package_and_every_subpackage(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"dataplatform"}
    repo = Path(__file__).resolve().parents[2]
    for folder, installed_as in REPO_FOLDERS.items():
        for init in (repo / folder).rglob("__init__.py"):
            expected = f"{installed_as}/{init.relative_to(repo / folder).as_posix()}"
            assert expected in names, f"{init.relative_to(repo)} is missing from the wheel (as {expected})"


def test_the_wheel_ships_the_data_products_and_the_package_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in DATA_FILES if name not in names]
    assert not missing, f"not in the wheel: {missing}"


def test_the_wheel_installs_into_a_clean_venv_and_runs(wheel: Path, tmp_path: Path) -> None:
    """A clean environment in a temporary folder, away from the repository, so that nothing
    but the installed wheel can answer the imports."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = subprocess.run([env_dir / "bin" / "python", "-m", "pip", "install", "-q", str(wheel)],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert pip.returncode == 0, pip.stderr[-3000:]
    helped = subprocess.run([env_dir / "bin" / "dataplatform", "--help"], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr[-3000:]
    assert "schemas" in helped.stdout and "run" in helped.stdout
    products = subprocess.run(
        [env_dir / "bin" / "python", "-c",
         "from dataplatform.products.product import load_products; print(sorted(load_products()))"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert products.returncode == 0, products.stderr[-3000:]
    assert "social_housing_availability" in products.stdout
