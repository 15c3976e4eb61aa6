"""Check a record against an Avro schema and say exactly what is wrong and where.

fastavro's validator reports union branch names in its paths (``E.after.U.bedrooms``);
a service developer wants ``after.bedrooms: got 'three' (str), expected int``. This
module walks the schema the way a reader would and reports the first problem per field.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

# Avro's int and long (32- and 64-bit signed): the one statement of their ranges, which the
# publisher's fast check, the derivations' output fitting and the bridges' positions share.
INT_RANGE = (-(2**31), 2**31 - 1)
LONG_RANGE = (-(2**63), 2**63 - 1)


class RecordValidationError(ValueError):
    """A record does not match its schema. ``problems`` holds (path, value, expected)."""

    def __init__(self, problems: list[tuple[str, Any, str]], product: str = "") -> None:
        self.problems = problems
        what = f" for {product}" if product else ""
        lines = "\n".join(f"  - {path}: got {value!r} ({type(value).__name__}), expected {expected}"
                          for path, value, expected in problems)
        super().__init__(f"record does not match the schema{what}:\n{lines}")

    @property
    def field_path(self) -> str:
        return self.problems[0][0]


def validate_record(record: Any, schema: dict | str | list, product: str = "") -> None:
    """Raise :class:`RecordValidationError` unless ``record`` matches ``schema``."""
    problems: list[tuple[str, Any, str]] = []
    _check(record, schema, "", problems, {})
    if problems:
        raise RecordValidationError(problems, product)


def _describe(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return " or ".join(_describe(s) for s in schema)
    if isinstance(schema, dict):
        if "logicalType" in schema:
            return f"{schema['logicalType']} ({schema['type']})"
        if schema.get("type") == "enum":
            return f"one of {', '.join(schema['symbols'])}"
        if schema.get("type") in ("record", "fixed"):
            return f"{schema['type']} {schema.get('name')}"
        if schema.get("type") in ("array", "map"):
            return schema["type"]
        return _describe(schema.get("type"))
    return str(schema)


def _matches(value: Any, schema: Any, named: dict) -> bool:
    problems: list = []
    _check(value, schema, "", problems, dict(named))
    return not problems


def _check(value: Any, schema: Any, path: str, problems: list, named: dict) -> None:
    here = path or "(record)"
    if isinstance(schema, list):  # union: the value must match one branch
        for branch in schema:
            if _matches(value, branch, named):
                _check(value, branch, path, problems, named)
                return
        # Report inside the most plausible non-null branch, so the path goes deep.
        non_null = [b for b in schema if b != "null"]
        if value is not None and len(non_null) == 1:
            _check(value, non_null[0], path, problems, named)
        else:
            problems.append((here, value, _describe(schema)))
        return
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if isinstance(schema, dict):
        kind = schema.get("type")
        if isinstance(kind, (dict, list)):
            _check(value, kind, path, problems, named)
            return
        if schema.get("name"):
            ns = schema.get("namespace")
            named[schema["name"]] = schema
            if ns:
                named[f"{ns}.{schema['name']}"] = schema
        logical = schema.get("logicalType")
        if logical:
            if not _logical_ok(value, schema):
                problems.append((here, value, _describe(schema)))
            return
        if kind == "record":
            if not isinstance(value, dict):
                problems.append((here, value, _describe(schema)))
                return
            known = {f["name"] for f in schema["fields"]}
            for extra in sorted(set(value) - known):
                problems.append((f"{path}.{extra}".lstrip("."), value[extra], "no such field in the schema"))
            for f in schema["fields"]:
                sub = f"{path}.{f['name']}".lstrip(".")
                if f["name"] not in value:
                    if "default" not in f:
                        problems.append((sub, None, f"{_describe(f['type'])} (the field is required)"))
                    continue
                _check(value[f["name"]], f["type"], sub, problems, named)
            return
        if kind == "enum":
            if value not in schema["symbols"]:
                problems.append((here, value, _describe(schema)))
            return
        if kind == "array":
            if not isinstance(value, (list, tuple)):
                problems.append((here, value, "array"))
                return
            for i, item in enumerate(value):
                _check(item, schema["items"], f"{path}[{i}]", problems, named)
            return
        if kind == "map":
            if not isinstance(value, dict):
                problems.append((here, value, "map"))
                return
            for k, item in value.items():
                _check(item, schema["values"], f"{path}[{k!r}]", problems, named)
            return
        if kind == "fixed":
            if not isinstance(value, (bytes, bytearray)) or len(value) != schema["size"]:
                problems.append((here, value, f"{schema['size']} bytes"))
            return
        _check(value, kind, path, problems, named)
        return
    if not _primitive_ok(value, schema):
        problems.append((here, value, _describe(schema)))


def _primitive_ok(value: Any, kind: str) -> bool:
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("int", "long"):
        lo, hi = INT_RANGE if kind == "int" else LONG_RANGE
        return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
    if kind in ("float", "double"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "bytes":
        return isinstance(value, (bytes, bytearray))
    return False


def _logical_ok(value: Any, schema: dict) -> bool:
    logical, base = schema["logicalType"], schema["type"]
    if logical == "date":
        return (isinstance(value, dt.date) and not isinstance(value, dt.datetime)) or _primitive_ok(value, "int")
    if logical in ("timestamp-millis", "timestamp-micros", "local-timestamp-millis", "local-timestamp-micros"):
        return isinstance(value, dt.datetime) or _primitive_ok(value, "long")
    if logical in ("time-millis", "time-micros"):
        return isinstance(value, dt.time) or _primitive_ok(value, base)
    if logical == "decimal":
        return isinstance(value, decimal.Decimal)
    if logical == "uuid":
        return isinstance(value, str)
    return _primitive_ok(value, base) if isinstance(base, str) else True
