"""Reading the YAML spec files in a product's folder (``derivation.yaml``, ``bridge.yaml``).

Both kinds are read the same way, as YAML that refuses a key given twice, then checked
against the data products under the same root; every problem comes back as a
:class:`SpecError` saying where and how to fix it, so ``schemas check`` lists them all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from dataplatform.derivations.spec import SpecError
from dataplatform.products.product import DataProduct, load_products

T = TypeVar("T")


class DerivationError(ValueError):
    """A spec that cannot be used; ``problems`` lists every one, each saying where and how to fix it."""

    def __init__(self, problems: list[SpecError]) -> None:
        self.problems = problems
        more = f"\n(and {len(problems) - 1} more: run `dataplatform schemas check`)" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}")


class _UniqueKeys(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (PyYAML keeps the last, silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue   # `<<: *anchor`: its keys may be overridden here, which is its purpose
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice in one mapping (first at line {seen[key] + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeys)   # noqa: S506 - a SafeLoader
    except FileNotFoundError:
        raise DerivationError([SpecError(path, "", "no such file", "give the path of a YAML file")]) from None
    except yaml.YAMLError as exc:
        raise DerivationError([SpecError(path, "", f"not valid YAML: {exc}", "fix the YAML syntax")]) from None


def check_spec_file(path: Path, root: Path, parse: Callable[[Any, dict[str, DataProduct]], tuple[T | None, list[SpecError]]],
                    products_broken: Callable[[Exception], SpecError]) -> tuple[T | None, list[SpecError]]:
    """The spec in ``path`` parsed against the products under ``root``, and every problem in it.

    Products that do not load are one problem (``products_broken`` words it for this kind
    of spec) and the spec is not checked further: the products' own check lists theirs."""
    try:
        doc = read_yaml(path)
    except DerivationError as exc:
        return None, exc.problems
    try:
        products = load_products(root)
    except (ValueError, OSError) as exc:
        return None, [products_broken(exc)]
    return parse(doc, products)
