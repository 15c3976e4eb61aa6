"""Finding and loading the derivation specs under ``schemas/`` (one per derived product folder)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from dataplatform.derivations.parse import parse
from dataplatform.derivations.spec import SPEC_FILE, Derivation, SpecError
from dataplatform.derivations.spec_files import DerivationError, check_spec_file, read_yaml
from dataplatform.products.product import PRODUCTS_ROOT, DataProduct, load_products


def derivation_files(root: Path = PRODUCTS_ROOT) -> list[Path]:
    return sorted(root.glob(f"*/*/{SPEC_FILE}"))


def check_file(path: Path, root: Path = PRODUCTS_ROOT) -> tuple[Derivation | None, list[SpecError]]:
    """The spec in ``path`` and every problem in it."""
    return check_spec_file(
        path, root, lambda doc, products: parse(doc, path, products, reference_dir=root / "reference"),
        lambda exc: SpecError(path, "", f"the data products under {root} do not load: {exc}",
                              "fix the products first (listed above)"))


def load_derivation(path: Path, rules_path: Path | str | None = None, horizon_days: int | None = None,
                    root: Path = PRODUCTS_ROOT) -> Derivation:
    """A usable spec, its rules replaced by an operations rules file if given; else DerivationError."""
    rules = read_yaml(Path(rules_path)) if rules_path else None
    if rules is not None and not isinstance(rules, dict):
        raise DerivationError([SpecError(rules_path, "", "expected a mapping with a 'rules' list",
                                         "see docs/derived-products.md, 'Rules'")])
    derivation, problems = parse(read_yaml(path), path, load_products(root), rules, horizon_days,
                                 reference_dir=root / "reference")
    if problems:
        raise DerivationError(problems)
    return derivation


@lru_cache(maxsize=None)
def load_derivations(root: Path = PRODUCTS_ROOT) -> dict[str, Derivation]:
    """Every spec under ``root`` by name (DerivationError on the first broken one)."""
    out: dict[str, Derivation] = {}
    for path in derivation_files(root):
        derivation = load_derivation(path, root=root)
        if derivation.name in out:
            raise DerivationError([SpecError(path, "name", f"{derivation.name!r} is also the name of "
                                             f"{out[derivation.name].file}", "give each derivation its own name")])
        out[derivation.name] = derivation
    return out


def get_derivation(name: str, root: Path = PRODUCTS_ROOT) -> Derivation:
    found = load_derivations(root)
    if name not in found:
        raise KeyError(f"no derivation named {name!r}; known: {', '.join(sorted(found)) or 'none'}")
    return found[name]


def spec_path(name: str, root: Path = PRODUCTS_ROOT) -> Path:
    """The file of the derivation ``name`` (by its ``name:``), without compiling it."""
    for path in derivation_files(root):
        doc = read_yaml(path)
        if isinstance(doc, dict) and doc.get("name") == name:
            return path
    known = [str((read_yaml(p) or {}).get("name")) for p in derivation_files(root)]
    raise KeyError(f"no derivation named {name!r}; known: {', '.join(sorted(known)) or 'none'}")


def declared_upstream(products: dict[str, DataProduct]) -> dict[str, list[str]]:
    """What each product is derived from, by the specs in the products' folders: a spec's
    figures product from its inputs, its warnings product from those figures. A product no
    spec derives keeps its manifest's ``upstreamProducts`` (made outside the platform)."""
    upstream = {name: list(p.manifest.upstreamProducts) for name, p in products.items()}
    for product in products.values():
        path = product.folder / SPEC_FILE
        if path.is_file():
            upstream.update(_outputs_of(str(path), path.stat().st_mtime_ns))
    return upstream


@lru_cache(maxsize=64)
def _outputs_of(path: str, _mtime_ns: int) -> dict[str, list[str]]:
    """``{figures: inputs, warnings: [figures]}`` of one spec file, read once per version of
    it (the catalogue and the warnings pages ask on every request)."""
    doc = read_yaml(Path(path))
    if not isinstance(doc, dict):
        return {}
    figures = (doc.get("figures") or {}).get("product")
    warnings = (doc.get("warnings") or {}).get("product")
    out: dict[str, list[str]] = {}
    if figures:
        out[figures] = [i.get("product") for i in doc.get("inputs") or [] if isinstance(i, dict)]
        if warnings:
            out[warnings] = [figures]
    return out
