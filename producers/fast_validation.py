"""A fast yes/no check of flat entity records, compiled once per schema.

The publisher validates every entity before sending. The platform's validator
(:mod:`dataplatform.products.validation`) walks the schema generically to explain *what* is wrong, and
fastavro's validator is generic too; both cost more per event than encoding does. Most
entities are flat records of primitives, enums, logical types and nullable unions, so
this module turns such a schema, once, into one generated Python function of inline
per-field type tests (no call per field).

The compiled check is deliberately *stricter or equal*: anything it accepts, the
platform's validator accepts too. Anything it rejects goes to the platform's validator,
which either accepts it (an unusual but valid value) or raises with the field path.
Schemas with nested records, arrays, maps or fixed get ``None``: callers then use
fastavro's validator.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from typing import Any

from dataplatform.products.validation import INT_RANGE, LONG_RANGE

Check = Callable[[Any], bool]
INT_MIN, INT_MAX = INT_RANGE
LONG_MIN, LONG_MAX = LONG_RANGE

_PRIMITIVES: dict[str, str] = {
    "null": "v is None",
    "boolean": "(v is True or v is False)",
    "int": f"(type(v) is int and {INT_MIN} <= v <= {INT_MAX})",
    "long": f"(type(v) is int and {LONG_MIN} <= v <= {LONG_MAX})",
    "float": "(type(v) is float or type(v) is int)",
    "double": "(type(v) is float or type(v) is int)",
    "string": "type(v) is str",
    "bytes": "type(v) is bytes",
}
_LOGICAL: dict[str, str] = {
    "date": f"(type(v) is _date or (type(v) is int and {INT_MIN} <= v <= {INT_MAX}))",
    "timestamp-millis": f"(type(v) is _datetime or (type(v) is int and {LONG_MIN} <= v <= {LONG_MAX}))",
    "timestamp-micros": f"(type(v) is _datetime or (type(v) is int and {LONG_MIN} <= v <= {LONG_MAX}))",
    "decimal": "type(v) is _Decimal",
    "uuid": "type(v) is str",
}


def _test(schema: Any, constants: dict[str, object]) -> str | None:
    """A Python expression on ``v`` that is true when ``v`` fits ``schema`` (None: unsupported)."""
    if isinstance(schema, str):
        return _PRIMITIVES.get(schema)
    if isinstance(schema, list):
        branches = [_test(b, constants) for b in schema]
        if any(b is None for b in branches):
            return None
        return "(" + " or ".join(branches) + ")"  # type: ignore[arg-type]
    if isinstance(schema, dict):
        logical = schema.get("logicalType")
        if logical:
            return _LOGICAL.get(logical)
        kind = schema.get("type")
        if kind == "enum":
            name = f"_symbols{len(constants)}"
            constants[name] = frozenset(schema["symbols"])
            return f"(type(v) is str and v in {name})"
        if isinstance(kind, (str, list)) and kind not in ("record", "array", "map", "fixed"):
            return _test(kind, constants)
    return None


def compile_record_check(schema: dict) -> Check | None:
    """A yes/no check of records of ``schema``, or None if it has nested/complex types."""
    if schema.get("type") != "record":
        return None
    constants: dict[str, object] = {"_MISSING": object(), "_date": dt.date, "_datetime": dt.datetime,
                                    "_Decimal": decimal.Decimal}
    lines = ["def record_ok(r):", "    if type(r) is not dict:", "        return False", "    n = 0"]
    for field in schema["fields"]:
        test = _test(field["type"], constants)
        if test is None:
            return None
        lines += [f"    v = r.get({field['name']!r}, _MISSING)",
                  "    if v is _MISSING:",
                  "        pass" if "default" in field else "        return False",
                  f"    elif {test}:",
                  "        n += 1",
                  "    else:",
                  "        return False"]
    lines.append("    return n == len(r)  # no field the schema does not have")
    namespace = dict(constants)
    exec(compile("\n".join(lines), f"<record check for {schema.get('name')}>", "exec"), namespace)  # noqa: S102
    return namespace["record_ok"]  # type: ignore[return-value]
