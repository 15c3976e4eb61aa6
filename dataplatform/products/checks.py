"""`dataplatform schemas check`: every manifest and schema valid, every change versioned.

Three layers, each naming the product, the field and the rule it breaks:
1. each manifest and entity schema validates on its own;
2. against the same product in a git revision (default ``HEAD``), the version moved as
   far as the change requires (see :mod:`dataplatform.products.versioning`);
3. against a schema registry, when one is reachable, the new value schema is compatible
   with what is registered under the subject's compatibility rule.

Beside the products, every bridge spec (``bridge.yaml``, :func:`check_bridges`) is checked
against the product it feeds, each problem with its file, place and fix.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError

from dataplatform.bridges.loading import bridge_files, check_file
from dataplatform.product_io.serialization import registry_client
from dataplatform.products.manifest import ManifestError, parse_manifest
from dataplatform.products.product import PRODUCTS_ROOT, DataProduct, SchemaFileError, load_product, product_folders
from dataplatform.products.versioning import ChangeReport, check_version_bump


@dataclass
class ProductCheck:
    folder: str
    name: str | None = None
    problems: list[str] = field(default_factory=list)
    report: ChangeReport | None = None
    registry: str = "not checked"

    @property
    def ok(self) -> bool:
        return not self.problems


def _git_show(root: Path, rev: str, path: Path) -> str | None:
    top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel"],
                         capture_output=True, text=True)
    if top.returncode != 0:
        return None
    rel = path.resolve().relative_to(Path(top.stdout.strip()).resolve())
    shown = subprocess.run(["git", "-C", str(root), "show", f"{rev}:{rel}"], capture_output=True, text=True)
    return shown.stdout if shown.returncode == 0 else None


def check_against_git(product: DataProduct, rev: str) -> tuple[ChangeReport | None, list[str]]:
    old_manifest_text = _git_show(product.folder, rev, product.folder / "manifest.yaml")
    old_schema_text = _git_show(product.folder, rev, product.folder / "entity.avsc")
    if old_manifest_text is None or old_schema_text is None:
        return None, []  # new product: nothing to compare with
    old_manifest = parse_manifest(yaml.safe_load(old_manifest_text), f"{rev}:{product.folder}/manifest.yaml")
    return check_version_bump(old_manifest, json.loads(old_schema_text), product.manifest, product.entity_schema)


def check_against_registry(product: DataProduct, registry_url: str) -> tuple[str, list[str]]:
    client = registry_client(registry_url)
    try:
        ok = client.test_compatibility(product.value_subject, Schema(product.value_schema_str, "AVRO"))
    except SchemaRegistryError as exc:
        if exc.http_status_code == 404:
            return "not registered yet", []
        return "error", [f"{product.name}: registry at {registry_url} answered {exc.http_status_code}: {exc.error_message}"]
    if ok:
        return "compatible", []
    return "incompatible", [
        f"{product.name}: the schema is not compatible with what is registered under "
        f"{product.value_subject} (registry {registry_url}); make the change compatible "
        f"(add fields with defaults) or bump the MAJOR version to publish on a new topic"
    ]


def check_products(root: Path = PRODUCTS_ROOT, against: str | None = "HEAD",
                   registry_url: str | None = None) -> list[ProductCheck]:
    results: list[ProductCheck] = []
    names: dict[str, str] = {}
    for folder in product_folders(root):
        check = ProductCheck(folder=str(folder))
        results.append(check)
        try:
            product = load_product(folder)
        except ManifestError as exc:
            check.problems.extend(f"{exc.path}: {p}" for p in exc.problems)
            continue
        except SchemaFileError as exc:
            check.problems.append(str(exc))
            continue
        check.name = product.name
        if product.name in names:
            check.problems.append(f"{folder}: name {product.name!r} is already used by {names[product.name]}")
        names[product.name] = str(folder)
        if against:
            check.report, problems = check_against_git(product, against)
            check.problems.extend(problems)
        if registry_url:
            check.registry, problems = check_against_registry(product, registry_url)
            check.problems.extend(problems)
    known = set(names)
    for check in results:
        if check.name and check.ok:
            product = load_product(Path(check.folder))
            for up in product.manifest.upstreamProducts:
                if up not in known:
                    check.problems.append(f"{check.folder}/manifest.yaml: upstreamProducts names {up!r}, which is not a data product")
    return results


def check_bridges(root: Path = PRODUCTS_ROOT) -> list[dict]:
    """One result per bridge spec under ``root``: its product, file and every problem."""
    out = []
    for path in bridge_files(root):
        bridge, problems = check_file(path, root)
        try:
            shown = str(path.relative_to(root))
        except ValueError:
            shown = str(path)
        out.append({"bridge": shown, "name": bridge.name if bridge else None, "ok": not problems,
                    "problems": [str(p) for p in problems]})
    return out
