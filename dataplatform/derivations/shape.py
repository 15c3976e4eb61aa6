"""The first pass over a spec: its shape against ``schemas/derivation.schema.json``.

Unknown keys and wrong types are said the way a person fixes them: the closest key that
exists ("did you mean"), and "quote it" for a value YAML read as a boolean or a number
where an expression or a name goes (``member_when: yes``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from dataplatform.derivations.expressions import did_you_mean
from dataplatform.derivations.spec import SpecError
from dataplatform.products.product import PACKAGE_SCHEMAS

SCHEMA = json.loads((PACKAGE_SCHEMAS / "derivation.schema.json").read_text())   # ships with the project


def schema_problems(doc: Any, file: Path, schema: dict = SCHEMA,
                    schema_name: str = "derivation.schema.json") -> list[SpecError]:
    """What the JSON Schema (a derivation spec's unless given: a bridge spec's too) says about
    ``doc``, each at its spec path."""
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            keys = list(error.schema.get("properties", {}))
            for key in (k for k in error.instance if k not in keys):
                problems.append(SpecError(file, f"{where}.{key}".lstrip("."), f"unknown key {key!r}",
                                          f"{did_you_mean(key, keys)}keys here: {', '.join(keys)}"))
        elif error.validator == "type" and "string" in str(error.validator_value) and \
                isinstance(error.instance, (bool, int, float)):
            problems.append(SpecError(file, where, f"YAML read {error.instance!r} as a "
                                      f"{type(error.instance).__name__}, not a string",
                                      f"quote it: {where.rsplit('.', 1)[-1]}: \"...\""))
        else:
            problems.append(SpecError(file, where, error.message, f"see schemas/{schema_name}"))
    return problems
