"""The two floors of ``dataplatform`` (docs/architecture.md): plumbing below, the
components (producers, stream processors, sinks) on it, the application (CLI, ``run``,
web, warnings, catalogue) on top. Nothing imports from a floor above its own, and below
the top no import of the project hides inside a function (the usual way round the rule).
The top floor may import lazily: a CLI command loads only what it runs.

Inside the stream processors, three rooms (docs/architecture.md, "The stream processor's
modules"): the core imports no engine, no deployment and no framework; the engine
imports no deployment; the deployment starts the engine without importing Faust itself."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# repository folder -> installed package (pyproject's package-dir mapping)
PACKAGES = {"dataplatform": "dataplatform", "producers": "dataplatform.producers",
            "stream_processors": "dataplatform.stream_processors", "sinks": "dataplatform.sinks"}
APPLICATION = ("dataplatform.cli", "dataplatform.platform", "dataplatform.supervisor", "dataplatform.web",
               "dataplatform.warnings", "dataplatform.catalogue")
COMPONENTS = ("dataplatform.producers", "dataplatform.stream_processors", "dataplatform.sinks")
CORE, ENGINE, DEPLOYMENT = (f"dataplatform.stream_processors.{room}" for room in ("core", "engine", "deployment"))
FAUST = ("faust", "mode", "aiokafka")
# room -> (what it must not import, the rule as a reader of a failure should see it)
ROOM_RULES = {
    CORE: ((ENGINE, DEPLOYMENT, *FAUST, "confluent_kafka", "asyncio"),
           "the core is plain Python: it imports no engine, no deployment, no Faust, mode, aiokafka, "
           "confluent_kafka or asyncio (stream_processors/core/__init__.py)"),
    ENGINE: ((DEPLOYMENT,), "the engine does not import the deployment (what both need is in "
                            "stream_processors/config.py)"),
    DEPLOYMENT: (FAUST, "the deployment does not import Faust, mode or aiokafka: it starts the engine "
                        "through stream_processors/engine/app.py"),
}


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


def imports(tree: ast.AST, package: str) -> list[tuple[ast.stmt, str]]:
    """(node, imported module) for every import, the project's and the libraries', relative
    ones resolved against ``package`` (the module's own package)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package.split(".")[:len(package.split(".")) + 1 - node.level]) if node.level else ""
            out.append((node, ".".join(p for p in (base, node.module) if p)))
    return out


def room_of(module: str) -> str | None:
    return next((room for room in ROOM_RULES if module == room or module.startswith(room + ".")), None)


@pytest.mark.parametrize("module,path", [(m, p) for m, p in modules() if room_of(m)],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_the_processor_rooms_import_only_what_their_rule_allows(module, path):
    forbidden, rule = ROOM_RULES[room_of(module)]
    problems = [f"{path.relative_to(REPO)}:{node.lineno} imports {target}: {rule}"
                for node, target in imports(ast.parse(path.read_text()),
                                            module if path.name == "__init__.py" else module.rpartition(".")[0])
                if any(target == f or target.startswith(f + ".") for f in forbidden)]
    assert not problems, "\n".join(problems)


def test_every_processor_module_is_in_a_room_or_shared_by_them():
    """A new module of the processor goes into a room (else no rule checks it); only the
    configuration is shared."""
    outside = [m for m, _ in modules() if m.startswith("dataplatform.stream_processors.") and not room_of(m)]
    assert outside == ["dataplatform.stream_processors.config"], outside


def test_the_core_loads_without_faust_or_a_kafka_client():
    """Not even through the plumbing it imports: a fresh interpreter that imports every module
    of the core has loaded no Faust, mode, aiokafka or confluent_kafka. (asyncio is let through
    here: libraries of the plumbing load it; the core's own modules do not import it.)"""
    code = ("import importlib, pkgutil, sys\n"
            f"import {CORE} as core\n"
            "for m in pkgutil.iter_modules(core.__path__): importlib.import_module(core.__name__ + '.' + m.name)\n"
            f"print(' '.join(n for n in {(*FAUST, 'confluent_kafka')!r} if n in sys.modules))\n")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert not loaded, f"importing {CORE} loads {', '.join(loaded)}: {ROOM_RULES[CORE][1]}"


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
