"""``dataplatform products`` and ``dataplatform schemas``: find, check and register data products."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dataplatform.cli.tables import print_fitted
from dataplatform.config import get_settings
from dataplatform.products.manifest import ManifestError, manifest_json_schema
from dataplatform.products.product import PRODUCTS_ROOT, SchemaFileError, get_product, load_products

products_app = typer.Typer(help="Find data products and see what they hold.", no_args_is_help=True)
schemas_app = typer.Typer(help="Check and register data product schemas.", no_args_is_help=True)
console = Console()
Root = typer.Option(PRODUCTS_ROOT, "--root", help="Folder holding <domain>/<name>/ product folders.")


def _load(root: Path):
    try:
        return load_products(root)
    except (ManifestError, SchemaFileError) as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(1)


def product_summary(p) -> dict:
    m = p.manifest
    return {
        "name": p.name, "domain": m.domain, "version": m.version, "status": m.status,
        "topic": p.topic, "owner": m.dataProductOwner, "email": m.email,
        "classification": m.securityClassification, "description": " ".join(m.description.split()),
        "tags": m.tag_list, "key_fields": m.keyFields, "personal_fields": m.personalDataFields,
        "upstream": m.upstreamProducts, "refresh_period_s": int(m.refreshPeriod.total_seconds()),
    }


@products_app.command("list")
def list_products(root: Path = Root, as_json: bool = typer.Option(False, "--json", help="Print a JSON list.")) -> None:
    """List every data product: name, domain, version, topic, owner."""
    products = _load(root)
    if as_json:
        typer.echo(json.dumps([product_summary(p) for p in products.values()], indent=2))
        return
    rows = [(p.name, p.manifest.domain, p.manifest.version, p.manifest.status, p.topic, p.manifest.dataProductOwner)
            for p in products.values()]
    print_fitted(console, ("name", "domain", "version", "status", "topic", "owner"), rows,
                 whole=("name", "topic"), drop_order=("owner", "status", "version", "domain"))


@products_app.command("show")
def show_product(name: str, root: Path = Root, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show one product's manifest and its fields."""
    _load(root)
    try:
        p = get_product(name, root)
    except KeyError as exc:
        typer.secho(f"error: {exc.args[0]}", err=True, fg="red")
        raise typer.Exit(1)
    summary = product_summary(p)
    if as_json:
        summary["fields"] = p.entity_fields()
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    for k, v in summary.items():
        console.print(f"[bold]{k:>16}[/bold]  {', '.join(v) if isinstance(v, list) else v}")
    table = Table("field", "type", "personal", "description", title="Fields")
    for f in p.entity_fields():
        table.add_row(f["name"], json.dumps(f["type"]) if not isinstance(f["type"], str) else f["type"],
                      "yes" if f["name"] in p.personal_fields else "", f.get("doc", ""))
    console.print(table)


@products_app.command("json-schema")
def json_schema(output: Path = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout.")) -> None:
    """Print the JSON Schema that manifests are validated against."""
    text = json.dumps(manifest_json_schema(), indent=2) + "\n"
    if output:
        output.write_text(text)
    else:
        typer.echo(text, nl=False)


@schemas_app.command("check")
def check(
    root: Path = Root,
    against: str = typer.Option("HEAD", "--against", help="Git revision holding the previous versions ('' to skip)."),
    registry: str = typer.Option(None, "--registry", help="Also test against this registry [default: SCHEMA_REGISTRY_URL]."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Validate every manifest and schema, check each change follows the versioning rules, and
    check every derivation and bridge spec (each problem names its file, the spec path and the fix)."""
    from dataplatform.cli.derivations import check_results
    from dataplatform.products.checks import check_bridges, check_products

    registry = registry or get_settings().schema_registry_url
    results = check_products(root, against or None, registry)
    derivations = check_results(root)
    bridges = check_bridges(root)
    if as_json:
        typer.echo(json.dumps([{
            "folder": r.folder, "name": r.name, "ok": r.ok, "problems": r.problems, "registry": r.registry,
            "change": r.report.to_dict() if r.report else None} for r in results]
            + [{"derivation": d["file"], **d} for d in derivations] + bridges, indent=2))
    else:
        for r in results:
            level = r.report.level if r.report else "new"
            typer.secho(f"{'ok  ' if r.ok else 'FAIL'}  {r.name or r.folder}  (change: {level}; registry: {r.registry})",
                        fg=None if r.ok else "red")
            for p in r.problems:
                typer.echo(f"      - {p}")
        for d in derivations:
            typer.secho(f"{'ok  ' if d['ok'] else 'FAIL'}  derivation {d['name'] or d['file']}  ({d['file']})",
                        fg=None if d["ok"] else "red")
            for p in d["problems"]:
                typer.echo(f"      - {p}")
        for b in bridges:
            typer.secho(f"{'ok  ' if b['ok'] else 'FAIL'}  bridge {b['name'] or b['bridge']}  ({b['bridge']})",
                        fg=None if b["ok"] else "red")
            for p in b["problems"]:
                typer.echo(f"      - {p}")
    if not all(r.ok for r in results) or not all(d["ok"] for d in [*derivations, *bridges]):
        raise typer.Exit(1)


@schemas_app.command("register")
def register(
    root: Path = Root,
    registry: str = typer.Option(None, "--registry", help="Registry URL [default: SCHEMA_REGISTRY_URL]."),
) -> None:
    """Register every product's value schema under its subject (refused if incompatible)."""
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    from dataplatform.product_io.serialization import ProductSerde, registry_client

    registry = registry or get_settings().schema_registry_url
    if not registry:
        typer.secho("error: no registry: pass --registry or set SCHEMA_REGISTRY_URL", err=True, fg="red")
        raise typer.Exit(1)
    failed = False
    for p in _load(root).values():
        try:
            schema_id = ProductSerde(p, registry_client(registry)).register()
            typer.echo(f"registered {p.value_subject} (id {schema_id})")
        except SchemaRegistryError as exc:
            failed = True
            typer.secho(f"refused {p.value_subject}: {exc.error_message} (error {exc.error_code})", err=True, fg="red")
    if failed:
        raise typer.Exit(1)


@products_app.command("grant")
def grant(
    name: list[str] = typer.Argument(None, help="Products to grant for [default: all]."),
    root: Path = Root,
    apply: bool = typer.Option(False, "--apply", help="Create the ACLs through Kafka's admin API."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print the Kafka ACLs each product's manifest implies; --apply creates them."""
    from confluent_kafka.admin import AdminClient

    from dataplatform.acls import apply_grants, grants_for
    from dataplatform.kafka_config import client_config

    products = _load(root)
    unknown = [n for n in name or [] if n not in products]
    if unknown:
        typer.secho(f"error: no data product named {', '.join(unknown)}", err=True, fg="red")
        raise typer.Exit(1)
    grants = [g for p in products.values() if not name or p.name in name for g in grants_for(p)]
    if as_json:
        typer.echo(json.dumps([g.__dict__ for g in grants], indent=2))
    else:
        for g in grants:
            typer.echo(g.describe())
    if apply:
        try:
            created = apply_grants(AdminClient(client_config()), grants)
        except Exception as exc:
            typer.secho(f"error: could not create the ACLs: {exc}", err=True, fg="red")
            raise typer.Exit(1)
        typer.echo(f"applied {created} ACLs", err=True)
