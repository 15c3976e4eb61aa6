"""From a ``derivation.yaml`` document to a checked :class:`Derivation`.

Two passes. The JSON Schema (``schemas/derivation.schema.json``) catches unknown keys and
wrong shapes; then every name is checked against what it refers to: the input products
and their Avro schemas, reference data, the derived products' schemas. Each expression is
compiled and type-checked here, once. Every problem is a :class:`SpecError` naming the
file, the spec path and the fix; :func:`parse` collects them all (``schemas check`` lists
them) and raises the first when asked for a usable spec.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from dataplatform.derivations.expressions import ExpressionError, avro_sample, compile_expression, is_date
from dataplatform.derivations.spec import (
    FIGURES_CORE, WARNING_CORE, Derivation, Groups, Input, NamePart, Output, RollUp, Rule, SpecError, Sum,
)
from dataplatform.products.product import PACKAGE_SCHEMAS, DataProduct
from dataplatform.products.reference import ReferenceError, reference_lookup

SCHEMA = json.loads((PACKAGE_SCHEMAS / "derivation.schema.json").read_text())   # ships with the project
TIME = {"today": 1, "horizon_days": 1}


def default_app_id(name: str) -> str:
    return f"dataplatform-{name}"


def schema_problems(doc: Any, file: Path, schema: dict = SCHEMA,
                    schema_name: str = "derivation.schema.json") -> list[SpecError]:
    """What the JSON Schema (a derivation spec's unless given) says about ``doc``, each at its spec path."""
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
        problems.append(SpecError(file, where, error.message, f"see schemas/{schema_name}"))
    return problems


class _Parser:
    def __init__(self, doc: dict, file: Path, products: dict[str, DataProduct]) -> None:
        self.doc, self.file, self.products = doc, file, products
        self.problems: list[SpecError] = []

    def fail(self, where: str, problem: str, fix: str = "") -> None:
        self.problems.append(SpecError(self.file, where, problem, fix))

    def expression(self, source: str, where: str, samples: dict, result: str = "any"):
        try:
            return compile_expression(source, samples, result)
        except ExpressionError as exc:
            self.fail(where, f"{source!r}: {exc}", "see docs/derived-products.md, 'Expressions'")
            return None

    def product(self, name: str, where: str) -> DataProduct | None:
        if name not in self.products:
            self.fail(where, f"no data product named {name!r}", f"known: {', '.join(sorted(self.products))}")
        return self.products.get(name)

    # -- the parts -------------------------------------------------------------------------------
    def input(self, i: int, raw: dict, key_fields: list[str]) -> Input | None:
        at = f"inputs[{i}]"
        product = self.product(raw["product"], f"{at}.product")
        if product is None:
            return None
        types = {f["name"]: f["type"] for f in product.entity_fields()}
        samples = {name: avro_sample(t) for name, t in types.items()}
        personal = product.personal_fields
        if len(raw["group_by"]) != len(key_fields):
            self.fail(f"{at}.group_by", f"{len(raw['group_by'])} field(s) but groups.fields has {len(key_fields)}",
                      "give one field per group key field, in the same order")
        for j, name in enumerate(raw["group_by"]):
            if name not in types:
                self.fail(f"{at}.group_by[{j}]", f"{product.name} has no field {name!r}",
                          f"its fields: {', '.join(types)}")
            elif name in personal:
                self.fail(f"{at}.group_by[{j}]", f"{name!r} is a personal field of {product.name}",
                          "a group key is published in the derived products: group by a non-personal field")
        member = self.expression(raw["member_when"], f"{at}.member_when", samples, "bool")
        counts = None
        if raw.get("counts_when"):
            counts = self.expression(raw["counts_when"], f"{at}.counts_when", {**samples, **TIME}, "bool")
        sums = [s["sum"] for s in self.doc.get("measures", {}).values() if s["role"] == raw["role"]]
        read = sorted((set(counts.variables) - set(TIME) if counts else set()) | set(sums))
        for name in read:
            if name in personal:
                self.fail(f"{at}.counts_when", f"reads {name!r}, a personal field of {product.name}",
                          "what counts_when and sums read is carried to the group's state: use a non-personal field")
        dates = frozenset(name for name, t in types.items() if is_date(t))
        if member is None or (raw.get("counts_when") and counts is None):
            return None
        return Input(product.name, raw["role"], tuple(raw["group_by"]), member, counts, tuple(read), dates)

    def groups(self, raw: dict) -> Groups:
        parts = []
        for i, part in enumerate(raw.get("name", [])):
            if part["field"] not in raw["fields"]:
                self.fail(f"groups.name[{i}].field", f"{part['field']!r} is not a group field",
                          f"use one of {', '.join(raw['fields'])}")
            if part.get("reference"):
                self.reference(part["reference"], part["key"], part["column"], f"groups.name[{i}]")
            parts.append(NamePart(part["field"], part.get("reference"), part.get("key"), part.get("column")))
        roll_ups = []
        for i, r in enumerate(raw.get("roll_ups", [])):
            if len(raw["fields"]) != 1:
                self.fail(f"groups.roll_ups[{i}]", "a roll-up needs a group key of one field",
                          "roll up a single-field key, or declare a second derivation")
            self.reference(r["reference"], r["from"], r["to"], f"groups.roll_ups[{i}]")
            if r.get("name"):
                self.reference(r["reference"], r["to"], r["name"], f"groups.roll_ups[{i}].name")
            roll_ups.append(RollUp(r["level"], r["reference"], r["from"], r["to"], r.get("name")))
        groups = Groups(raw["level"], tuple(raw["fields"]), tuple(parts), tuple(roll_ups), raw.get("noun", "groups"))
        if len(set(groups.levels)) != len(groups.levels):
            self.fail("groups.roll_ups", f"levels {list(groups.levels)} repeat a name", "give each level its own name")
        return groups

    def reference(self, name: str, key: str, column: str, where: str) -> None:
        try:
            reference_lookup(name, key, column)
        except ReferenceError as exc:
            self.fail(where, str(exc), "add the CSV file to schemas/reference or fix the name")

    def group_samples(self, groups: Groups, inputs: list[Input]) -> list[dict]:
        """A sample ``group`` per level, with exactly the keys a group of that level has."""
        first = self.products[inputs[0].product] if inputs else None
        types = {f["name"]: f["type"] for f in first.entity_fields()} if first else {}
        base = {"code": "x", "name": "x", "level": groups.level, groups.level: "x",
                **{part.column: "x" for part in groups.name if part.column}}
        for name, source in zip(groups.fields, inputs[0].group_by if inputs else ()):
            base[name] = avro_sample(types.get(source, "string"))
        out = [{**base, **{r.level: "x" for r in groups.roll_ups}}]
        for i, r in enumerate(groups.roll_ups):
            out.append({"code": "x", "name": "x", "level": r.level, **{u.level: "x" for u in groups.roll_ups[i:]}})
        return out

    def output(self, key: str, core: tuple[str, ...], measures: dict, groups: list[dict]) -> Output | None:
        raw = self.doc[key]
        product = self.product(raw["product"], f"{key}.product")
        fields = []
        for name, source in raw["fields"].items():
            where = f"{key}.fields.{name}"
            expression = None
            for group in groups:   # checked against a group of every level
                expression = self.expression(source, where, {"group": group, **measures})
                if expression is None:
                    break
            if expression is not None:
                fields.append((name, expression))
        if product is not None:
            declared = {f["name"] for f in product.entity_fields()}
            for name in raw["fields"]:
                if name not in declared:
                    self.fail(f"{key}.fields.{name}", f"{product.name}'s schema has no field {name!r}",
                              f"its fields: {', '.join(sorted(declared))}")
                elif name in core:
                    self.fail(f"{key}.fields.{name}", f"{name!r} is set by the processor", "remove it from fields")
                elif name in product.personal_fields:
                    self.fail(f"{key}.fields.{name}", f"{name!r} is a personal field of {product.name}",
                              "derived products carry no personal data")
            upstream = list(product.manifest.upstreamProducts)
            derived_from = ([i["product"] for i in self.doc["inputs"]] if key == "figures"
                            else [self.doc["figures"]["product"]])
            if upstream and upstream != derived_from:
                self.fail(f"{key}.product", f"{product.name}'s manifest says upstreamProducts {upstream}, but this "
                          f"spec derives it from {derived_from}", "fix the manifest's upstreamProducts or drop it "
                          "(the catalogue's lineage comes from the spec)")
            missing = sorted(declared - set(raw["fields"]) - set(core))
            if missing:
                self.fail(f"{key}.fields", f"{product.name}'s schema has field(s) {', '.join(missing)} "
                          "that no expression sets", "add an expression for each")
        return Output(raw["product"], tuple(fields)) if product else None

    def rule(self, i: int, raw: dict, levels: tuple[str, ...], measures: dict, horizon: int) -> Rule | None:
        at = f"rules[{i}]"
        bad = [lvl for lvl in raw.get("applies_to", levels) if lvl not in levels]
        if bad:
            self.fail(f"{at}.applies_to", f"{bad} is not a level of this spec", f"levels: {', '.join(levels)}")
        have = self.expression(raw["have"], f"{at}.have", measures, "number")
        need = self.expression(raw["need"], f"{at}.need", measures, "number")
        values = {k: v for k, v in raw.items() if k not in ("have", "need", "applies_to")}
        values.setdefault("horizon_days", horizon)
        if not values.get("red_below", 1.0) <= values.get("amber_below", 1.2):
            self.fail(at, "red_below is above amber_below", "need 0 <= red_below <= amber_below")
        if have is None or need is None:
            return None
        return Rule(have=have, need=need, applies_to=tuple(raw.get("applies_to", levels)), **values)


def parse(doc: Any, file: Path, products: dict[str, DataProduct],
          rules_doc: dict | None = None, horizon_days: int | None = None) -> tuple[Derivation | None, list[SpecError]]:
    """The derivation in ``doc`` and every problem found (None when there is any).

    ``rules_doc`` (a ``{horizon_days, rules}`` mapping from an operations rules file)
    replaces the spec's rules; ``horizon_days`` overrides every horizon."""
    problems = schema_problems(doc, file)
    if rules_doc is not None:
        problems += schema_problems({**doc, **rules_doc}, file) if not problems else []
        doc = {**doc, "rules": rules_doc.get("rules"), "horizon_days": rules_doc.get("horizon_days",
                                                                                        doc.get("horizon_days", 28))}
    if problems:
        return None, problems
    p = _Parser(doc, file, products)
    horizon = int(horizon_days if horizon_days is not None else doc.get("horizon_days", 28))
    roles = [raw["role"] for raw in doc["inputs"]]
    if len(set(roles)) != len(roles):
        p.fail("inputs", f"roles {roles} repeat a name", "give each input its own role")
    inputs = [x for i, raw in enumerate(doc["inputs"]) if (x := p.input(i, raw, doc["groups"]["fields"]))]
    groups = p.groups(doc["groups"])
    measures: dict[str, Any] = {role: 1 for role in roles}
    sums = []
    for name, raw in doc.get("measures", {}).items():
        if raw["role"] not in roles:
            p.fail(f"measures.{name}.role", f"no input has role {raw['role']!r}", f"roles: {', '.join(roles)}")
            continue
        product = p.products.get(doc["inputs"][roles.index(raw["role"])]["product"])
        types = {f["name"]: f["type"] for f in product.entity_fields()} if product else {}
        if product and not isinstance(avro_sample(types.get(raw["sum"])), (int, float)):
            p.fail(f"measures.{name}.sum", f"{raw['sum']!r} is not a numeric field of {product.name}",
                   "sum an int, long, float or double field")
        sums.append(Sum(name, raw["sum"], raw["role"]))
        measures[name] = 1
    derived = []
    for name, source in doc.get("derived", {}).items():
        expression = p.expression(source, f"derived.{name}", dict(measures), "number")
        if expression is not None:
            derived.append((name, expression))
            measures[name] = 1.0
    group_samples = p.group_samples(groups, inputs)
    figures = p.output("figures", FIGURES_CORE, measures, group_samples)
    warnings = p.output("warnings", WARNING_CORE, measures, group_samples)
    rules = [r for i, raw in enumerate(doc["rules"]) if (r := p.rule(i, raw, groups.levels, measures, horizon))]
    if horizon_days is not None:
        rules = [Rule(**{**r.__dict__, "horizon_days": horizon}) for r in rules]
    ids = [r["id"] for r in doc["rules"]]
    if len(set(ids)) != len(ids):
        p.fail("rules", f"rule ids {ids} repeat a name", "give each rule its own id")
    if p.problems:
        return None, p.problems
    return Derivation(doc["name"], doc.get("app_id") or default_app_id(doc["name"]), file, str(doc.get("description", "")).strip(), horizon, tuple(inputs), groups,
                      tuple(sums), tuple(derived), figures, warnings, tuple(rules)), []

