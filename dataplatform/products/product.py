"""A data product as the platform sees it: manifest + entity schema + derived names.

Products live in folders ``schemas/<domain>/<name>/`` holding ``manifest.yaml`` and
``entity.avsc``. :func:`load_products` finds them all; everything else (producers,
processors, sinks, the catalogue) asks this module for topics, subjects and schemas
rather than building those names itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from fastavro import parse_schema
from fastavro.schema import SchemaParseException

import dataplatform.schemas
from dataplatform.product_io.names import dead_letter_topic, value_subject
from dataplatform.products.envelope import envelope_schema
from dataplatform.products.manifest import Manifest, ManifestError, load_manifest
from dataplatform.products.validation import validate_record

PACKAGE_SCHEMAS = Path(dataplatform.schemas.__file__).resolve().parent  # the repository's schemas/ folder
PRODUCTS_DIR_ENV = "DATAPLATFORM_PRODUCTS_DIR"
# Where the data products (and derivation specs, and reference data) are read from: the
# repository's schemas/ folder, or a team's own folder of the same layout named by
# DATAPLATFORM_PRODUCTS_DIR (read once, at start-up; worker processes inherit it).
PRODUCTS_ROOT = Path(os.environ.get(PRODUCTS_DIR_ENV) or PACKAGE_SCHEMAS).resolve()


class SchemaFileError(ValueError):
    """An entity schema that is not valid Avro or does not fit its manifest."""


@dataclass
class DataProduct:
    manifest: Manifest
    entity_schema: dict
    folder: Path

    # -- names ---------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def topic(self) -> str:
        return self.manifest.topic

    @property
    def value_subject(self) -> str:
        return value_subject(self.topic)

    @property
    def dead_letter_topic(self) -> str:
        return dead_letter_topic(self.topic)

    @property
    def namespace(self) -> str:
        return f"{str(self.manifest.domain).lower()}.{self.name}.v{self.manifest.major}"

    @property
    def personal_fields(self) -> set[str]:
        return set(self.manifest.personalDataFields)

    # -- schemas ---------------------------------------------------------------
    @cached_property
    def value_schema(self) -> dict:
        """The Avro schema of the topic's values: the envelope around the entity."""
        return envelope_schema(self.entity_schema, self.name, self.namespace)

    @cached_property
    def value_schema_str(self) -> str:
        return json.dumps(self.value_schema, sort_keys=False)

    @cached_property
    def parsed_entity_schema(self) -> dict:
        return parse_schema(self.entity_schema)

    def entity_fields(self) -> list[dict]:
        return list(self.entity_schema["fields"])

    def key_of(self, entity: dict) -> str:
        """The Kafka key of an entity: its key field(s), joined by '|' when several."""
        return "|".join(str(entity[k]) for k in self.manifest.keyFields)

    def validate_entity(self, entity: dict) -> None:
        """Raise RecordValidationError naming the field path, value and expected type."""
        validate_record(entity, self.entity_schema, product=self.name)


def load_product(folder: Path) -> DataProduct:
    manifest = load_manifest(folder / "manifest.yaml")
    schema_path = folder / "entity.avsc"
    try:
        entity = json.loads(schema_path.read_text())
    except FileNotFoundError:
        raise SchemaFileError(f"{schema_path}: missing; a data product needs its entity schema") from None
    except json.JSONDecodeError as exc:
        raise SchemaFileError(f"{schema_path}: not valid JSON: {exc}") from None
    check_entity_schema(entity, manifest, schema_path)
    return DataProduct(manifest=manifest, entity_schema=entity, folder=folder)


def check_entity_schema(entity: dict, manifest: Manifest, where: Path | str) -> None:
    """The entity schema must be an Avro record holding the manifest's key and personal fields."""
    try:
        parse_schema(entity)
    except (SchemaParseException, KeyError, TypeError, ValueError) as exc:
        raise SchemaFileError(f"{where}: not a valid Avro schema: {exc}") from None
    if entity.get("type") != "record":
        raise SchemaFileError(f"{where}: the entity schema must be an Avro record, not {entity.get('type')!r}")
    names = {f["name"] for f in entity["fields"]}
    for label, fields in (("keyFields", manifest.keyFields), ("personalDataFields", manifest.personalDataFields)):
        missing = [f for f in fields if f not in names]
        if missing:
            raise SchemaFileError(
                f"{where}: manifest {label} names {', '.join(missing)}, which the entity schema does not have "
                f"(fields: {', '.join(sorted(names))})"
            )
    expected_folder = f"{str(manifest.domain).lower()}/{manifest.name}"
    if isinstance(where, Path) and not str(where.parent).endswith(expected_folder):
        raise SchemaFileError(f"{where}: product {manifest.name!r} of domain {manifest.domain} belongs in schemas/{expected_folder}/")


def product_folders(root: Path = PRODUCTS_ROOT) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/*/manifest.yaml"))


def load_products(root: Path = PRODUCTS_ROOT) -> dict[str, DataProduct]:
    """Every data product under ``root``, by name. Raises on the first invalid one.

    Parsed once per version of the files: callers on hot paths (a topic name per published
    event) ask freely, and an edited manifest or schema is picked up on the next call.
    """
    files = sorted(p for folder in product_folders(root) for p in folder.iterdir() if p.is_file())
    signature = tuple((str(p), st.st_mtime_ns, st.st_size) for p in files for st in [p.stat()])
    cached = _LOADED.get(root)
    if cached is None or cached[0] != signature:
        cached = _LOADED[root] = (signature, _load_products(root))
    return dict(cached[1])


_LOADED: dict[Path, tuple[tuple, dict[str, DataProduct]]] = {}


def _load_products(root: Path) -> dict[str, DataProduct]:
    products: dict[str, DataProduct] = {}
    for folder in product_folders(root):
        product = load_product(folder)
        if product.name in products:
            raise ManifestError(folder / "manifest.yaml", [f"name: {product.name!r} is already used by {products[product.name].folder}"])
        products[product.name] = product
    for product in products.values():
        unknown = [u for u in product.manifest.upstreamProducts if u not in products]
        if unknown:
            raise ManifestError(product.folder / "manifest.yaml",
                                [f"upstreamProducts: no data product named {', '.join(unknown)}"])
    return products


@dataclass(frozen=True)
class BrokenProduct:
    """A product folder that does not load, and why (the validation error)."""

    folder: str
    error: str


def survey_products(root: Path = PRODUCTS_ROOT) -> tuple[dict[str, DataProduct], list[BrokenProduct]]:
    """Every product that loads, and every folder that does not with its error.

    For the catalogue, where one invalid manifest must not hide every other product (the
    platform itself still refuses to start on one: see :func:`load_products`).
    """
    try:
        return load_products(root), []
    except (ValueError, OSError):
        pass
    products: dict[str, DataProduct] = {}
    broken: list[BrokenProduct] = []
    for folder in product_folders(root):
        where = str(folder.relative_to(root))
        try:
            product = load_product(folder)
        except (ValueError, OSError) as exc:
            broken.append(BrokenProduct(where, str(exc).replace(f"{root}/", "")))
            continue
        if product.name in products:
            broken.append(BrokenProduct(where, f"name: {product.name!r} is already used by another product"))
            continue
        products[product.name] = product
    return products, broken


def get_product(name: str, root: Path = PRODUCTS_ROOT) -> DataProduct:
    products = load_products(root)
    try:
        return products[name]
    except KeyError:
        raise KeyError(f"no data product named {name!r}; known: {', '.join(sorted(products))}") from None
