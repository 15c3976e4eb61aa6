"""``dataplatform derivations``: the derived products declared as specs, and what each joins."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dataplatform.derivations.loading import DerivationError, check_file, derivation_files, load_derivations
from dataplatform.derivations.spec import Derivation
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
        "outputs": {"figures": d.figures.product, "warnings": d.warnings.product},
        "rules": [{"id": r.id, "have": r.have.source, "need": r.need.source, "applies_to": list(r.applies_to),
                   "red_below": r.red_below, "amber_below": r.amber_below, "min_need": r.min_need,
                   "horizon_days": r.horizon_days} for r in d.rules],
    }


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
    table = Table("derivation", "inputs (role)", "group key", "figures", "warnings", "rules")
    for d in found.values():
        table.add_row(d.name, ", ".join(f"{i.product} ({i.role})" for i in d.inputs),
                      " + ".join(d.groups.fields) + "".join(f" > {lvl}" for lvl in d.groups.levels[1:]),
                      d.figures.product, d.warnings.product, ", ".join(r.id for r in d.rules))
    Console().print(table)


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
    typer.echo(f"  writes {s['outputs']['figures']} and {s['outputs']['warnings']}")
    for r in s["rules"]:
        typer.echo(f"  rule   {r['id']}: {r['have']} / {r['need']}: RED below {r['red_below']:g}, "
                   f"AMBER below {r['amber_below']:g}, judged from {r['min_need']:g} ({', '.join(r['applies_to'])})")
