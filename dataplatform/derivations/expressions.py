"""CEL expressions in derivation specs: compiled and type-checked once, evaluated many times.

A spec's expressions (membership, measures, outputs, rules) are written in CEL, the Common
Expression Language (https://cel.dev), through the maintained ``common-expression-language``
package: safe (no I/O, no attribute access into Python, always terminates) and fast (a
compiled program runs in a few microseconds). :func:`compile_expression` parses an
expression, checks every name it reads against the names its place allows, and runs it
once against a typed sample of each name (a string for an Avro string, an int for an
Avro date, ...), so a type error (``status + 1``) or a wrong result type is reported at
start-up with the spec path, never on the thousandth event.

Avro ``date`` values (and ``today``) are days since 1970-01-01, so "within N days" is
plain integer arithmetic: ``available_from <= today + horizon_days``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cel

EPOCH = dt.date(1970, 1, 1)
_PATH = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?$")
COMPARED = re.compile(r"""(?<![\w.])([A-Za-z_]\w*|"[^"]*"|'[^']*')\s*[!=]=\s*([A-Za-z_]\w*(?![\w.])|"[^"]*"|'[^']*')""")
KINDS = {"bool": (bool,), "number": (int, float), "string": (str,), "any": (object,)}


class ExpressionError(ValueError):
    """An expression that cannot be used: the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Expression:
    """One compiled expression; ``variables`` are the names it reads (for projections)."""

    source: str
    variables: frozenset[str]
    program: Any = field(compare=False, repr=False)
    path: tuple[str, str | None] | None = field(default=None, compare=False, repr=False)

    def __call__(self, context: Mapping[str, Any]) -> Any:
        if self.path is not None:   # a plain name or name.field: no need to run CEL
            name, attr = self.path
            value = context[name]
            return value if attr is None else value[attr]
        return self.program.execute(dict(context))


def compile_expression(source: str, samples: Mapping[str, Any], result: str = "any",
                       dates: frozenset[str] = frozenset()) -> Expression:
    """``source`` compiled and checked against ``samples`` (the names it may read, each with
    a value of its type; ``dates`` are the names holding day numbers). Raises
    :class:`ExpressionError` naming the problem and, where it can tell, the fix."""
    source = str(source).strip()
    if not source:
        raise ExpressionError("the expression is empty")
    try:
        program = cel.compile(source)
    except ValueError as exc:
        raise ExpressionError(f"not a valid CEL expression: {_first_line(exc)}") from None
    names = frozenset(program.variables())
    unknown = sorted(name for name in names if name not in samples)
    if unknown:
        raise ExpressionError(f"unknown name{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                              f"it may use {', '.join(sorted(samples)) or 'no names'}{_hint(unknown, samples, source)}")
    match = _PATH.match(source)
    path = (match.group(1), match.group(2)) if match else None
    expression = Expression(source, names, program, path)
    value = sample_value(expression, samples, dates)
    if not isinstance(value, KINDS[result]) or (result == "number" and isinstance(value, bool)):
        raise ExpressionError(f"gives {type(value).__name__} {value!r}, expected a {result}")
    return expression


def sample_value(expression: Expression, samples: Mapping[str, Any], dates: frozenset[str] = frozenset()) -> Any:
    """What ``expression`` gives for ``samples``; :class:`ExpressionError` saying why it cannot."""
    try:
        return expression.program.execute({name: samples[name] for name in expression.variables})
    except KeyError as exc:
        maps = {name: sorted(v) for name, v in samples.items() if isinstance(v, dict) and name in expression.variables}
        there = "; ".join(f"{name} has {', '.join(keys)}" for name, keys in maps.items())
        near = did_you_mean(str(exc.args[0]), [k for keys in maps.values() for k in keys]).strip()
        raise ExpressionError(f"reads {exc.args[0]!r}, which is not there ({there})" + (f"; {near}" if near else "")) from None
    except ZeroDivisionError:
        raise ExpressionError("divides by zero when " + " and ".join(
            f"{n} is {samples[n]!r}" for n in sorted(expression.variables) if samples[n] == 0)
            + ": guard it, e.g. `need == 0 ? 0.0 : double(have) / double(need)`") from None
    except Exception as exc:  # noqa: BLE001 - the CEL runtime raises TypeError, RuntimeError, ValueError
        read_dates = sorted(expression.variables & (dates | {"today"}))
        hint = (f"; {', '.join(read_dates)} {'is a day number' if len(read_dates) == 1 else 'are day numbers'} "
                "(days since 1970-01-01), not a date or a string: compare with today + N, e.g. "
                f"`{read_dates[0]} <= today + 7`" if read_dates else "")
        raise ExpressionError(f"type error: {_first_line(exc).split('. ')[0].rstrip('.')}"
                              f" (CEL does not convert between types){hint}") from None


def closest(word: str, options) -> str | None:
    """The option nearest to ``word`` (a typo of it), if any is near."""
    found = difflib.get_close_matches(word, [str(o) for o in options], n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: str, options) -> str:
    """"did you mean 'x'? " for a near option (to start a fix with), else ""."""
    near = closest(word, options)
    return f"did you mean {near!r}? " if near else ""


def compared(source: str) -> list[tuple[str, str]]:
    """The two sides of each ``==`` and ``!=`` between a name and a name or a quoted value."""
    return COMPARED.findall(source)


def _hint(unknown: list[str], samples: Mapping[str, Any], source: str) -> str:
    """Is it a value that wants quotes (``status == available``), or a known name misspelt?"""
    values = [b if a in samples else a for a, b in compared(source) if {a, b} & set(unknown) and {a, b} & set(samples)]
    if values:
        return f'; {values[0]!r} is compared with a field as a value: quote it: "{values[0]}"'
    near = {name: closest(name, samples) for name in unknown}
    if all(near.values()):
        return "; did you mean " + ", ".join(repr(n) for n in near.values()) + "?"
    value = next(name for name, n in near.items() if not n)
    return f'; if {value!r} is a value, not a name, quote it: "{value}"'


def epoch_day(value: Any) -> Any:
    """A date as days since 1970-01-01 (how expressions see Avro dates); other values as they are."""
    if isinstance(value, dt.datetime):
        return (value.date() - EPOCH).days
    if isinstance(value, dt.date):
        return (value - EPOCH).days
    return value


def iso_day(days: int) -> str:
    return (EPOCH + dt.timedelta(days=int(days))).isoformat()


def avro_sample(schema: Any) -> Any:
    """A value of an Avro type as expressions see it (None for a type CEL cannot read)."""
    if isinstance(schema, list):   # a union: its first non-null branch
        branches = [s for s in schema if s != "null"]
        return avro_sample(branches[0]) if branches else None
    if isinstance(schema, dict):
        logical = schema.get("logicalType")
        if logical == "date" or logical in ("timestamp-millis", "timestamp-micros"):
            return 1
        if logical == "decimal":
            return None
        if schema.get("type") == "enum":
            return str(schema["symbols"][0])
        return avro_sample(schema.get("type"))
    return {"string": "x", "int": 1, "long": 1, "float": 1.0, "double": 1.0, "boolean": True}.get(schema)


def enum_symbols(schema: Any) -> tuple[str, ...] | None:
    """The symbols of an Avro enum type (or of a union's enum branch); None for any other type."""
    if isinstance(schema, list):
        return next((found for s in schema if (found := enum_symbols(s))), None)
    return tuple(schema["symbols"]) if isinstance(schema, dict) and schema.get("type") == "enum" else None


def is_date(schema: Any) -> bool:
    if isinstance(schema, list):
        return any(is_date(s) for s in schema)
    return isinstance(schema, dict) and schema.get("logicalType") == "date"


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines[:1] + [line.strip() for line in lines[1:3] if line.strip().startswith("|")])
