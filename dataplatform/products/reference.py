"""Reference data shared by products and processors: English regions and Welsh areas with
their local authorities (ONS codes), and prisons."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dataplatform.products.product import PRODUCTS_ROOT

HERE = PRODUCTS_ROOT / "reference"  # the CSV files, next to the data products that use their codes


@dataclass(frozen=True)
class Area:
    local_authority_code: str
    local_authority_name: str
    region_code: str
    region_name: str
    country: str


@dataclass(frozen=True)
class Prison:
    prison_code: str
    prison_name: str
    region_code: str


@lru_cache(maxsize=1)
def local_authorities() -> dict[str, Area]:
    """Local authorities by ONS code."""
    with open(HERE / "areas.csv", newline="") as f:
        return {row["local_authority_code"]: Area(**row) for row in csv.DictReader(f)}


@lru_cache(maxsize=1)
def regions() -> dict[str, str]:
    """Region (or, for Wales, country) names by ONS code."""
    return {a.region_code: a.region_name for a in local_authorities().values()}


@lru_cache(maxsize=1)
def prisons() -> dict[str, Prison]:
    with open(HERE / "prisons.csv", newline="") as f:
        return {row["prison_code"]: Prison(**row) for row in csv.DictReader(f)}


def area_name(code: str) -> str:
    """A readable name for a local authority or region code (the code itself if unknown)."""
    if code in local_authorities():
        return local_authorities()[code].local_authority_name
    return regions().get(code, code)


def region_of(local_authority_code: str) -> str:
    """The region code a local authority belongs to (KeyError if the code is unknown)."""
    return local_authorities()[local_authority_code].region_code


class ReferenceError(ValueError):
    """Reference data that does not exist, or lacks a column a spec names."""


@lru_cache(maxsize=None)
def reference_table(name: str, folder: Path = HERE) -> tuple[dict[str, str], ...]:
    """The rows of ``<folder>/<name>.csv`` (any reference data a derivation spec names); the
    folder is ``reference/`` of the products folder (``DATAPLATFORM_PRODUCTS_DIR``)."""
    path = folder / f"{name}.csv"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.csv"))) or "none"
        raise ReferenceError(f"no reference data named {name!r}: there is no {path.name} in {folder} (known: {known})")
    with open(path, newline="") as f:
        return tuple(csv.DictReader(f))


@lru_cache(maxsize=None)
def reference_lookup(name: str, key: str, column: str, folder: Path = HERE) -> dict[str, str]:
    """``key`` -> ``column`` over the rows of reference data ``name``."""
    rows = reference_table(name, folder)
    missing = [c for c in (key, column) if rows and c not in rows[0]]
    if missing:
        raise ReferenceError(f"reference data {name!r} has no column {', '.join(missing)} "
                             f"(its columns: {', '.join(rows[0])})")
    return {row[key]: row[column] for row in rows}
