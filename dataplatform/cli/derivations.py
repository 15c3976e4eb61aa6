"""``dataplatform derivations``: the derived products declared as specs, and what each joins."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer

from dataplatform.derivations.loading import DerivationError, check_file, derivation_files, load_derivations
from dataplatform.derivations.expressions import Expression
from dataplatform.derivations.spec import Derivation, Rule
from dataplatform.products.product import PRODUCTS_ROOT

app = typer.Typer(help="Derived data products declared as specs (derivation.yaml).", no_args_is_help=True)
Root = typer.Option(PRODUCTS_ROOT, "--root", help="Folder holding <domain>/<name>/ product folders.")


def summary(d: Derivation, root: Path = PRODUCTS_ROOT) -> dict:
    return {
        "name": d.name, "app_id": d.app_id, "file": str(_relative(d.file, root)), "description": d.description,
        "inputs": [{"product": i.product, "role": i.role, "group_by": list(i.group_by),
                    "member_when": i.member_when.source,
                    "counts_when": i.counts_when.source if i.counts_when else None} for i in d.inputs],
        "group": {"level": d.groups.level, "fields": list(d.groups.fields),
                  "levels": list(d.groups.levels)},
        "horizon_days": d.horizon_days, "measures": list(d.measures),
        "own_measures": [{"name": m.name, "role": m.role, "sum": m.field, "when": m.when.source if m.when else None}
                         for m in d.own_measures],
        "derived": {name: expression.source for name, expression in d.derived},
        "outputs": {"figures": d.figures.product, "warnings": d.warnings.product},
        "rules": [_rule(r) for r in d.rules],
    }


def _rule(rule: Rule) -> dict:
    """Every setting of a rule, as the spec gives it (expressions by their source)."""
    out = {}
    for f in dataclasses.fields(rule):
        value = getattr(rule, f.name)
        out[f.name] = value.source if isinstance(value, Expression) else list(value) if isinstance(value, tuple) else value
    return out


def check_results(root: Path) -> list[dict]:
    """One result per spec under ``root``: its name, file and every problem (for ``schemas check``)."""
    out = []
    for path in derivation_files(root):
        derivation, problems = check_file(path, root)
        out.append({"file": str(_relative(path, root)), "name": derivation.name if derivation else None,
                    "ok": not problems, "problems": [str(p) for p in problems]})
    return out


def _load(root: Path) -> dict[str, Derivation]:
    try:
        return load_derivations(root)
    except DerivationError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(1)


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return path


@app.command("list")
def list_(root: Path = Root, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every derivation: what it joins and what it publishes."""
    found = _load(root)
    if as_json:
        typer.echo(json.dumps([summary(d, root) for d in found.values()], indent=2))
        return
    for d in found.values():   # one block each: a long product name is never cut to fit a column
        typer.echo(d.name)
        typer.echo(f"  inputs    {', '.join(f'{i.product} ({i.role})' for i in d.inputs)}")
        typer.echo(f"  groups    {' + '.join(d.groups.fields)}" + "".join(f" > {lvl}" for lvl in d.groups.levels[1:]))
        typer.echo(f"  figures   {d.figures.product}\n  warnings  {d.warnings.product}")
        typer.echo(f"  rules     {', '.join(r.id for r in d.rules)}")


@app.command("show")
def show(name: str = typer.Argument(..., help="The derivation's name (see `derivations list`)."), root: Path = Root,
         as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """One derivation in full: inputs, membership, measures, outputs, rules."""
    found = _load(root)
    if name not in found:
        typer.secho(f"error: no derivation named {name!r}; known: {', '.join(sorted(found))}", err=True, fg="red")
        raise typer.Exit(2)
    s = summary(found[name], root)
    if as_json:
        typer.echo(json.dumps(s, indent=2))
        return
    typer.echo(f"{s['name']}  ({s['file']}; app id {s['app_id']})\n  {s['description']}")
    for i in s["inputs"]:
        typer.echo(f"  input  {i['product']} as {i['role']}, by {' + '.join(i['group_by'])}")
        typer.echo(f"         member when {i['member_when']}" + (f"; counts when {i['counts_when']}"
                                                                   if i["counts_when"] else ""))
    typer.echo(f"  levels {' > '.join(s['group']['levels'])}; horizon {s['horizon_days']} days")
    typer.echo(f"  measures {', '.join(s['measures'])}")
    for m in s["own_measures"]:
        what = f"sum of {m['sum']} over {m['role']}" if m["sum"] else f"count of {m['role']}"
        typer.echo(f"           {m['name']}: {what}" + (f" when {m['when']}" if m["when"] else ""))
    for name, source in s["derived"].items():
        typer.echo(f"           {name}: {source}")
    typer.echo(f"  writes {s['outputs']['figures']} and {s['outputs']['warnings']}")
    for r in s["rules"]:
        typer.echo(f"  rule   {r['id']}: {r['have']} / {r['need']} at {', '.join(r['applies_to'])}")
        for key, value in r.items():
            if key not in ("id", "have", "need", "applies_to") and value not in ("", None):
                typer.echo(f"           {key}: {value}")
