"""Finding and loading the bridge specs under ``schemas/`` (at most one per product folder)."""

from __future__ import annotations

from pathlib import Path

from dataplatform.bridges.parse import parse
from dataplatform.bridges.spec import SPEC_FILE, Bridge
from dataplatform.derivations.spec import SpecError
from dataplatform.derivations.spec_files import DerivationError, check_spec_file
from dataplatform.products.product import PRODUCTS_ROOT, DataProduct


class BridgeSpecError(DerivationError):
    """A bridge spec that cannot be used; ``problems`` lists every one (file, place, fix)."""


def bridge_files(root: Path = PRODUCTS_ROOT) -> list[Path]:
    return sorted(root.glob(f"*/*/{SPEC_FILE}"))


def check_file(path: Path, root: Path = PRODUCTS_ROOT) -> tuple[Bridge | None, list[SpecError]]:
    """The spec in ``path`` and every problem in it."""
    return check_spec_file(
        path, root, lambda doc, products: parse(doc, path, products),
        lambda exc: SpecError(path, "product", f"not checked: the products do not load ({exc})",
                              "fix the products first"))


def load_bridges(root: Path = PRODUCTS_ROOT) -> dict[str, Bridge]:
    """Every bridge under ``root`` by the product it feeds (BridgeSpecError listing the problems)."""
    out: dict[str, Bridge] = {}
    for path in bridge_files(root):
        bridge, problems = check_file(path, root)
        if problems:
            raise BridgeSpecError(problems)
        out[bridge.name] = bridge   # type: ignore[union-attr]
    return out


def get_bridge(name: str, root: Path = PRODUCTS_ROOT) -> Bridge:
    found = load_bridges(root)
    if name not in found:
        raise KeyError(f"no bridge feeds {name!r}; bridged products: {', '.join(sorted(found)) or 'none'}")
    return found[name]


def bridge_source(product: DataProduct) -> dict | None:
    """Where a bridged product's events come from (for the catalogue): queue, topic, service and
    event types, read from the spec in its folder; None for a product without a bridge."""
    path = product.folder / SPEC_FILE
    if not path.is_file():
        return None
    bridge, problems = check_file(path, product.folder.parent.parent)
    if bridge is None:
        return {"problems": [str(p) for p in problems]}
    return {"queue": bridge.queue, "topic": bridge.topic, "system": bridge.system,
            "event_types": [{"type": m.event_type, "versions": list(m.versions), "op": m.op,
                             "detail": m.reads_detail} for m in bridge.events],
            "other_types": "ignored" if bridge.ignore_unknown else "dead-lettered"}
