"""A spec's two outputs checked against their products: every field set, each expression's
value fitted to its Avro field in every situation the processor meets, and the core
fields every figures or warnings product has (set by the processor) declared as it writes them.

The situations are a sample ``group`` per level, with exactly the names a group of that
level has (:func:`group_samples`: a roll-up's code and name are null below it when the
reference data lacks the group), times the measures at 1 and at 0.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dataplatform.derivations.avro_fit import avro_kind, misfit, named_types
from dataplatform.derivations.expressions import ExpressionError, avro_sample, did_you_mean, sample_value
from dataplatform.derivations.spec import FIGURES_CORE, WARNING_CORE, Groups, Input, Output
from dataplatform.products.product import DataProduct

if TYPE_CHECKING:
    from dataplatform.derivations.parse import _Parser

CORE = {"figures": FIGURES_CORE, "warnings": WARNING_CORE}
Situation = tuple[str, str, dict]   # (how to say it, level, the sample group)


def group_samples(groups: Groups, inputs: list[Input], products: dict[str, DataProduct]) -> list[Situation]:
    """A sample ``group`` per level (and per level with its roll-ups missing from the reference data)."""
    first = products.get(inputs[0].product) if inputs else None
    types = {f["name"]: f["type"] for f in first.entity_fields()} if first else {}
    base: dict[str, Any] = {"code": "<group.code>", "name": "<group.name>", "level": groups.level,
                            groups.level: "<group.code>",
                            **{part.column: f"<group.{part.column}>" for part in groups.name if part.column}}
    for name, source in zip(groups.fields, inputs[0].group_by if inputs else ()):
        sample = avro_sample(types.get(source, "string"))
        base[name] = f"<group.{name}>" if isinstance(sample, str) else sample

    def above(roll_ups, missing: bool) -> dict:
        out = {}
        for r in roll_ups:
            out[r.level] = None if missing else f"<group.{r.level}>"
            if r.name_column:
                out[r.name_column] = None if missing else f"<group.{r.name_column}>"
        return out
    ups = groups.roll_ups
    out: list[Situation] = [(f"at level {groups.level}", groups.level, {**base, **above(ups, False)})]
    if ups:
        out.append((f"at level {groups.level}, for a group missing from reference data {ups[0].reference!r}",
                    groups.level, {**base, **above(ups, True)}))
    for i, r in enumerate(ups):
        own = {"code": "<group.code>", "name": "<group.name>", "level": r.level, **above([r], False)}
        out.append((f"at level {r.level}", r.level, {**own, **above(ups[i + 1:], False)}))
        if ups[i + 1:]:
            out.append((f"at level {r.level}, for a group missing from reference data {ups[i + 1].reference!r}",
                        r.level, {**own, **above(ups[i + 1:], True)}))
    return out


def core_values(avro_type: Any) -> list[Any]:
    """What the processor writes to a core field of this (canonical) type."""
    kind = avro_kind(avro_type, {})
    values: list[Any] = list(kind.symbols or ())
    values += ["x"] if "string" in kind.bases else [28] if "int" in kind.bases else [2 ** 41] if "long" in kind.bases else []
    return values + [None] * kind.nullable


class OutputChecks:
    def __init__(self, parser: _Parser, measures: list[tuple[str, dict]], groups: list[Situation]) -> None:
        self.p, self.measures, self.groups = parser, measures, groups

    def check(self, key: str, levels: tuple[str, ...]) -> Output | None:
        """The ``figures`` or ``warnings`` output, made at ``levels``, checked against its product."""
        p, raw, core = self.p, self.p.doc[key], CORE[key]
        product = p.product(raw["product"], f"{key}.product")
        declared = {f["name"]: f["type"] for f in product.entity_fields()} if product else {}
        named = named_types(product.entity_fields()) if product else {}
        contexts = [(f"{g_label}{m_label}", {"group": group, **measures})
                    for g_label, level, group in self.groups if level in levels for m_label, measures in self.measures]
        fields = []
        for name, source in raw["fields"].items():
            where = f"{key}.fields.{name}"
            kind = None
            if product is not None and name not in declared:
                p.fail(where, f"{product.name}'s schema has no field {name!r}",
                       f"{did_you_mean(name, declared)}its fields: {', '.join(sorted(declared))}")
            elif product is not None and name in core:
                p.fail(where, f"{name!r} is set by the processor", "remove it from fields")
            elif product is not None and name in product.personal_fields:
                p.fail(where, f"{name!r} is a personal field of {product.name}", "derived products carry no personal data")
            elif product is not None:
                kind = avro_kind(declared[name], named)
            expression = p.expression(source, where, contexts[0][1])
            if expression is not None and self.fits(expression, where, contexts, kind):
                fields.append((name, expression))
        if product is not None:
            self.products_agree(key, product, declared, named, set(raw["fields"]))
        return Output(raw["product"], tuple(fields)) if product else None

    def fits(self, expression, where: str, contexts: list[tuple[str, dict]], kind) -> bool:
        for label, context in contexts:
            try:
                value = sample_value(expression, context)
            except ExpressionError as exc:
                self.p.fail(where, f"{expression.source!r}: {exc} ({label})", "see docs/derived-products.md, 'Expressions'")
                return False
            bad = misfit(value, kind) if kind else None
            if bad:
                self.p.fail(where, f"{expression.source!r} {bad[0]} ({label})", bad[1])
                return False
        return True

    def products_agree(self, key: str, product: DataProduct, declared: dict, named: dict, set_here: set[str]) -> None:
        """The product's manifest, its core fields and every other field set by an expression."""
        p, core = self.p, CORE[key]
        upstream = list(product.manifest.upstreamProducts)
        derived_from = [i["product"] for i in p.doc["inputs"]] if key == "figures" else [p.doc["figures"]["product"]]
        if upstream and upstream != derived_from:
            p.fail(f"{key}.product", f"{product.name}'s manifest says upstreamProducts {upstream}, but this "
                   f"spec derives it from {derived_from}", "fix the manifest's upstreamProducts or drop it "
                   "(the catalogue's lineage comes from the spec)")
        avsc = product.folder / "entity.avsc"
        for name, avro_type in core.items():
            wanted = f'{{"name": "{name}", "type": {json.dumps(avro_type)}}}'
            if name not in declared:
                p.fail(f"{key}.product", f"{product.name}'s schema lacks {name!r}, a field every {key} product has "
                       "(the processor sets it)", f"add {wanted} to {avsc}")
                continue
            kind = avro_kind(declared[name], named)
            bad = next((b for v in core_values(avro_type) if (b := misfit(v, kind))), None)
            if bad:
                p.fail(f"{key}.product", f"{product.name}'s field {name!r} is {kind.shown}, which cannot hold what the "
                       f"processor writes there ({bad[0].removeprefix('gives ')})", f"declare it as {wanted} in {avsc}")
        missing = sorted(set(declared) - set_here - set(core))
        if missing:
            p.fail(f"{key}.fields", f"{product.name}'s schema has field(s) {', '.join(missing)} "
                   "that no expression sets", "add an expression for each")
