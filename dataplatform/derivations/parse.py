"""From a ``derivation.yaml`` document to a checked :class:`Derivation`.

Two passes. The JSON Schema (``schemas/derivation.schema.json``) catches unknown keys and
wrong shapes; then every name is checked against what it refers to: the input products
and their Avro schemas, reference data, the derived products' schemas. Each expression is
compiled and type-checked here, once; what an output expression gives is fitted to its
Avro field (:mod:`.outputs`). Every problem is a :class:`SpecError` naming the file, the
spec path and the fix; :func:`parse` collects them all (``schemas check`` lists them) and
raises the first when asked for a usable spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataplatform.derivations.expressions import (
    ExpressionError, avro_sample, compared, compile_expression, did_you_mean, enum_symbols, is_date, sample_value,
)
from dataplatform.derivations.outputs import OutputChecks, group_samples
from dataplatform.derivations.shape import schema_problems
from dataplatform.derivations.spec import (
    RESERVED, Derivation, Groups, Input, Measure, NamePart, RollUp, Rule, SpecError,
)
from dataplatform.products.product import DataProduct
from dataplatform.products.reference import HERE, ReferenceError, reference_lookup

TIME = {"today": 1, "horizon_days": 1}
EXPRESSIONS = "see docs/derived-products.md, 'Expressions'"
CEL_WORDS = frozenset("true false null in as break const continue else for function if import let loop package "
                      "namespace return var void while".split())


def default_app_id(name: str) -> str:
    return f"dataplatform-{name}"


class _Parser:
    def __init__(self, doc: dict, file: Path, products: dict[str, DataProduct], reference_dir: Path) -> None:
        self.doc, self.file, self.products, self.reference_dir = doc, file, products, reference_dir
        self.problems: list[SpecError] = []
        self.roles = [raw["role"] for raw in doc["inputs"]]

    def fail(self, where: str, problem: str, fix: str = "") -> None:
        self.problems.append(SpecError(self.file, where, problem, fix))

    def expression(self, source: str, where: str, samples: dict, result: str = "any",
                   dates: frozenset[str] = frozenset()):
        try:
            return compile_expression(source, samples, result, dates)
        except ExpressionError as exc:
            self.fail(where, f"{source!r}: {exc}", EXPRESSIONS)
            return None

    def product(self, name: str, where: str) -> DataProduct | None:
        if name not in self.products:
            self.fail(where, f"no data product named {name!r}",
                      f"{did_you_mean(name, self.products)}known: {', '.join(sorted(self.products))}")
        return self.products.get(name)

    def field(self, product: DataProduct, name: str, where: str) -> bool:
        """Whether ``product`` has a field ``name`` that is not personal (else say so at ``where``)."""
        types = [f["name"] for f in product.entity_fields()]
        if name not in types:
            self.fail(where, f"{product.name} has no field {name!r}",
                      f"{did_you_mean(name, types)}its fields: {', '.join(types)}")
        elif name in product.personal_fields:
            self.fail(where, f"{name!r} is a personal field of {product.name}",
                      "what this reads is carried to the group's state or published: use a non-personal field")
        else:
            return True
        return False

    def symbols(self, expression, where: str, types: dict) -> None:
        """A quoted value compared with an enum field must be one of its symbols (else the
        comparison is silently never true: ``status == "availble"``)."""
        if expression is None:
            return
        for a, b in compared(expression.source):
            name, value = (a, b) if a in types else (b, a) if b in types else (None, "")
            symbols = enum_symbols(types.get(name))
            if symbols and value[:1] in "\"'" and value[1:-1] not in symbols:
                self.fail(where, f"{value} is not a value of {name} (an enum: {', '.join(symbols)})",
                          f"{did_you_mean(value[1:-1], symbols)}compare with one of its symbols")

    @staticmethod
    def samples_of(product: DataProduct) -> tuple[dict, dict, frozenset[str]]:
        """A product's field types, a typed sample of each, and its date fields."""
        types = {f["name"]: f["type"] for f in product.entity_fields()}
        return types, {n: avro_sample(t) for n, t in types.items()}, frozenset(n for n, t in types.items() if is_date(t))

    def input_of(self, role: str) -> DataProduct | None:
        return self.products.get(self.doc["inputs"][self.roles.index(role)]["product"]) if role in self.roles else None

    # -- the parts -------------------------------------------------------------------------------
    def measure(self, name: str, raw: dict) -> Measure | None:
        """One of the spec's own measures: ``{count: role}`` or ``{sum: field, role: role}``, with an optional ``when``."""
        at = f"measures.{name}"
        if ("count" in raw) == ("sum" in raw):
            self.fail(at, "a measure is either a count or a sum",
                      "write {count: <role>} or {sum: <field>, role: <role>}, each with an optional when")
            return None
        if "count" in raw and raw.get("role", raw["count"]) != raw["count"]:
            self.fail(f"{at}.role", "a count names its role in count:", f"write {{count: {raw['count']}}}")
        role_key = "count" if "count" in raw else "role"
        role = raw.get(role_key)
        if role is None:
            self.fail(at, "a sum needs the role whose members it sums", f"add role: ({', '.join(self.roles)})")
            return None
        if role not in self.roles:
            self.fail(f"{at}.{role_key}", f"no input has role {role!r}",
                      f"{did_you_mean(role, self.roles)}roles: {', '.join(self.roles)}")
            return None
        product = self.input_of(role)
        if product is None:
            return None
        types, samples, dates = self.samples_of(product)
        if "sum" in raw and self.field(product, raw["sum"], f"{at}.sum") and \
                isinstance(avro_sample(types[raw["sum"]]), bool | str | None):
            self.fail(f"{at}.sum", f"{raw['sum']!r} is not a numeric field of {product.name}",
                      "sum an int, long, float or double field")
        when = None
        if raw.get("when"):
            when = self.expression(raw["when"], f"{at}.when", {**samples, **TIME}, "bool", dates)
            self.symbols(when, f"{at}.when", types)
            for read in sorted(when.variables - set(TIME)) if when else ():
                self.field(product, read, f"{at}.when")
        return Measure(name, role, raw.get("sum"), when)

    def input(self, i: int, raw: dict, key_fields: list[str], measures: list[Measure]) -> Input | None:
        at = f"inputs[{i}]"
        product = self.product(raw["product"], f"{at}.product")
        if product is None:
            return None
        types, samples, dates = self.samples_of(product)
        if len(raw["group_by"]) != len(key_fields):
            self.fail(f"{at}.group_by", f"{len(raw['group_by'])} field(s) but groups.fields has {len(key_fields)}",
                      "give one field per group key field, in the same order")
        for j, name in enumerate(raw["group_by"]):
            self.field(product, name, f"{at}.group_by[{j}]")
        member = self.expression(raw["member_when"], f"{at}.member_when", samples, "bool", dates)
        self.symbols(member, f"{at}.member_when", types)
        counts = None
        if raw.get("counts_when"):
            counts = self.expression(raw["counts_when"], f"{at}.counts_when", {**samples, **TIME}, "bool", dates)
            self.symbols(counts, f"{at}.counts_when", types)
            for name in sorted(counts.variables - set(TIME)) if counts else ():
                self.field(product, name, f"{at}.counts_when")
        own = [m for m in measures if m.role == raw["role"]]
        read = sorted(((set(counts.variables) if counts else set()) | {m.field for m in own if m.field}
                       | {v for m in own if m.when for v in m.when.variables}) - set(TIME))
        if member is None or (raw.get("counts_when") and counts is None):
            return None
        return Input(product.name, raw["role"], tuple(raw["group_by"]), member, counts, tuple(read), dates)

    def groups(self, raw: dict) -> Groups:
        parts = []
        for i, part in enumerate(raw.get("name", [])):
            if part["field"] not in raw["fields"]:
                self.fail(f"groups.name[{i}].field", f"{part['field']!r} is not a group field",
                          f"{did_you_mean(part['field'], raw['fields'])}use one of {', '.join(raw['fields'])}")
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
        names = [*groups.fields, *groups.levels, *(p.column for p in parts if p.column),
                 *(r.name_column for r in roll_ups if r.name_column), "code", "name", "level"]
        for name in sorted({n for n in names if names.count(n) > 1}):
            self.fail("groups", f"{name!r} names two things a group has (group.{name})",
                      "give each key field, level, name column and roll-up name its own name")
        return groups

    def reference(self, name: str, key: str, column: str, where: str) -> None:
        try:
            reference_lookup(name, key, column, self.reference_dir)
        except ReferenceError as exc:
            self.fail(where, str(exc), f"add {name}.csv to {self.reference_dir} (the products folder's reference/), "
                      "or fix the name")

    def names(self, measures: dict, derived: dict) -> None:
        """One namespace for role counts, the spec's measures and derived measures."""
        taken: dict[str, str] = {}
        for where, name, what in ([(f"inputs[{i}].role", r, f"the count of role {r!r}") for i, r in enumerate(self.roles)]
                                  + [(f"measures.{n}", n, f"the measure measures.{n}") for n in measures]
                                  + [(f"derived.{n}", n, f"the derived measure derived.{n}") for n in derived]):
            if name in RESERVED or name in CEL_WORDS:
                self.fail(where, f"{name!r} is a name expressions already use", "give it another name")
            elif name in taken:
                self.fail(where, f"{name!r} is already {taken[name]}: role counts, measures and derived measures "
                          "share one namespace", "give it a name of its own")
            taken.setdefault(name, what)

    def rule(self, i: int, raw: dict, levels: tuple[str, ...], measures: dict, horizon: int) -> Rule | None:
        at = f"rules[{i}]"
        bad = [lvl for lvl in raw.get("applies_to", levels) if lvl not in levels]
        if bad:
            self.fail(f"{at}.applies_to", f"{bad} is not a level of this spec",
                      f"{did_you_mean(bad[0], levels)}levels: {', '.join(levels)}")
        have = self.expression(raw["have"], f"{at}.have", measures, "number")
        need = self.expression(raw["need"], f"{at}.need", measures, "number")
        values = {k: v for k, v in raw.items() if k not in ("have", "need", "applies_to")}
        values.setdefault("horizon_days", horizon)
        if not values.get("red_below", 1.0) <= values.get("amber_below", 1.2):
            self.fail(at, "red_below is above amber_below", "need 0 <= red_below <= amber_below")
        if have is None or need is None:
            return None
        return Rule(have=have, need=need, applies_to=tuple(raw.get("applies_to", levels)), **values)

    def at_zero(self, expression, where: str, zeros: dict) -> Any:
        """What ``expression`` gives when every count and sum is 0 (a group with nothing that counts)."""
        try:
            return sample_value(expression, zeros)
        except ExpressionError as exc:
            self.fail(where, f"{expression.source!r}: {exc}", EXPRESSIONS)
            return None


def parse(doc: Any, file: Path, products: dict[str, DataProduct], rules_doc: dict | None = None,
          horizon_days: int | None = None, reference_dir: Path = HERE) -> tuple[Derivation | None, list[SpecError]]:
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
    p = _Parser(doc, file, products, reference_dir)
    horizon = int(horizon_days if horizon_days is not None else doc.get("horizon_days", 28))
    if len(set(p.roles)) != len(p.roles):
        p.fail("inputs", f"roles {p.roles} repeat a name", "give each input its own role")
    p.names(doc.get("measures", {}), doc.get("derived", {}))
    own = [m for name, raw in doc.get("measures", {}).items() if (m := p.measure(name, raw))]
    inputs = [x for i, raw in enumerate(doc["inputs"]) if (x := p.input(i, raw, doc["groups"]["fields"], own))]
    groups = p.groups(doc["groups"])
    ones: dict[str, Any] = {role: 1 for role in p.roles}
    for m in own:
        field = next((f for f in p.input_of(m.role).entity_fields() if f["name"] == m.field), None) if m.field else None
        ones[m.name] = 1.0 if field and isinstance(avro_sample(field["type"]), float) else 1
    zeros = {name: value * 0 for name, value in ones.items()}
    derived = []
    for name, source in doc.get("derived", {}).items():
        expression = p.expression(source, f"derived.{name}", dict(ones), "number")
        if expression is not None:
            one = ones[name] = expression(ones)
            zero = p.at_zero(expression, f"derived.{name}", zeros)
            zeros[name] = one * 0 if zero is None else zero
            if zero is not None and type(zero) is not type(one):
                p.fail(f"derived.{name}", f"{source!r} gives {type(zero).__name__} {zero!r} when the measures are 0 "
                       f"but {type(one).__name__} otherwise", "make every branch the same type, e.g. 0.0 for a double")
            derived.append((name, expression))
    outputs = OutputChecks(p, [("", ones), (" when the measures are 0", zeros)], group_samples(groups, inputs, products))
    figures = outputs.check("figures", groups.levels)
    rule_levels = [lvl for raw in doc["rules"] for lvl in raw.get("applies_to", groups.levels)]
    warnings = outputs.check("warnings", tuple(lvl for lvl in groups.levels if lvl in rule_levels) or groups.levels)
    rules = [r for i, raw in enumerate(doc["rules"]) if (r := p.rule(i, raw, groups.levels, ones, horizon))]
    for i, raw in enumerate(doc["rules"]):
        if horizon_days is None and raw.get("horizon_days", horizon) != horizon:
            p.fail(f"rules[{i}].horizon_days", f"{raw['horizon_days']} days, but the figures product is for the spec's "
                   f"horizon_days {horizon}: its warnings would carry figures of another window",
                   f"drop the rule's horizon_days (it takes the spec's) or set the spec's to {raw['horizon_days']}")
    at = {raw["id"]: f"rules[{i}]" for i, raw in enumerate(doc["rules"])}
    for r in rules:
        p.at_zero(r.have, f"{at[r.id]}.have", zeros)
        p.at_zero(r.need, f"{at[r.id]}.need", zeros)
    if horizon_days is not None:
        rules = [Rule(**{**r.__dict__, "horizon_days": horizon}) for r in rules]
    ids = [r["id"] for r in doc["rules"]]
    if len(set(ids)) != len(ids):
        p.fail("rules", f"rule ids {ids} repeat a name", "give each rule its own id")
    if p.problems:
        return None, p.problems
    return Derivation(doc["name"], doc.get("app_id") or default_app_id(doc["name"]), file,
                      str(doc.get("description", "")).strip(), horizon, tuple(inputs), groups, tuple(own),
                      tuple(derived), figures, warnings, tuple(rules), reference_dir), []
