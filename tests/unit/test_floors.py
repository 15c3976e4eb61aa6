"""The two floors of ``dataplatform`` (docs/architecture.md): plumbing below, the
components (producers, stream processors, sinks) on it, the application (CLI, ``run``,
web, warnings, catalogue) on top. Nothing imports from a floor above its own, and below
the top no import of the project hides inside a function (the usual way round the rule).
The top floor may import lazily: a CLI command loads only what it runs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# repository folder -> installed package (pyproject's package-dir mapping)
PACKAGES = {"dataplatform": "dataplatform", "producers": "dataplatform.producers",
            "stream_processors": "dataplatform.stream_processors", "sinks": "dataplatform.sinks"}
APPLICATION = ("dataplatform.cli", "dataplatform.platform", "dataplatform.supervisor", "dataplatform.web",
               "dataplatform.warnings", "dataplatform.catalogue")
COMPONENTS = ("dataplatform.producers", "dataplatform.stream_processors", "dataplatform.sinks")


def floor(module: str) -> int:
    """0 plumbing, 1 components, 2 application."""
    if module.startswith(APPLICATION):
        return 2
    return 1 if module.startswith(COMPONENTS) else 0


def modules() -> list[tuple[str, Path]]:
    found = []
    for folder, package in PACKAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            found.append((".".join((package, *parts)).removesuffix(".__init__"), path))
    return found


def project_imports(tree: ast.AST) -> list[tuple[ast.stmt, str, bool]]:
    """(node, imported module, inside a function) for every import of the project."""
    inside = {id(sub) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
              for sub in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        names = ([node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                 else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        out += [(node, name, id(node) in inside) for name in names if name.split(".")[0] == "dataplatform"]
    return out


@pytest.mark.parametrize("module,path", modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_no_import_from_a_floor_above_nor_hidden_in_a_function(module, path):
    problems = []
    for node, target, in_function in project_imports(ast.parse(path.read_text())):
        where = f"{path.relative_to(REPO)}:{node.lineno}"
        if floor(target) > floor(module):
            problems.append(f"{where} imports {target}, a floor above {module}")
        elif in_function and floor(module) < 2:
            problems.append(f"{where} imports {target} inside a function: import it at the top")
    assert not problems, "\n".join(problems)


def test_the_metrics_counters_are_plumbing_and_the_scrape_time_collector_is_the_web_service():
    """The components update the counters, so they sit below them (docs/architecture.md);
    the collector reads Kafka, the database and the heartbeats for the web service."""
    assert floor("dataplatform.metrics") == 0
    assert floor("dataplatform.web.scrape_metrics") == 2
