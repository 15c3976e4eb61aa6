"""The catalogue: search with filters, product pages (how to use the data, freshness,
consumers), schema CSV, lineage picture, and JSON behind each.

Nothing here asks Kafka: freshness and lag come from :class:`CatalogueFacts`, refreshed
in the background, so a page costs milliseconds."""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from dataplatform.catalogue.facts_cache import CatalogueFacts
from dataplatform.catalogue.freshness import humanise
from dataplatform.catalogue.iceberg import iceberg_delivery
from dataplatform.catalogue.lineage import edges, lineage_svg
from dataplatform.bridges.loading import bridge_source
from dataplatform.catalogue.search import Filters, facets, find
from dataplatform.catalogue.usage import usage
from dataplatform.config import shown
from dataplatform.registry.store import SchemaRegistryStore
from dataplatform.web.templating import templates
from dataplatform.products.product import BrokenProduct, DataProduct, survey_products
from dataplatform.products.versioning import compare_schemas

log = logging.getLogger(__name__)
PAGE_MAX_AGE_S = 1.0   # a product page shows new versions, freshness and consumers within this


def _type_text(t) -> tuple[str, bool]:
    """A readable type and whether the field may be null."""
    if isinstance(t, list):
        branches = [b for b in t if b != "null"]
        text = " or ".join(_type_text(b)[0] for b in branches)
        return text, "null" in t
    if isinstance(t, dict):
        if t.get("logicalType"):
            return t["logicalType"] + (f"({t['precision']},{t['scale']})" if t["logicalType"] == "decimal" else ""), False
        if t.get("type") == "enum":
            return "one of " + ", ".join(t["symbols"]), False
        if t.get("type") == "array":
            return f"list of {_type_text(t['items'])[0]}", False
        if t.get("type") == "record":
            return f"record {t['name']}", False
        return _type_text(t["type"])
    return str(t), False


def field_rows(p: DataProduct) -> list[dict]:
    rows = []
    for f in p.entity_fields():
        text, nullable = _type_text(f["type"])
        rows.append({"name": f["name"], "type": text, "nullable": nullable, "doc": f.get("doc", ""),
                     "personal": f["name"] in p.personal_fields})
    return rows


def summary(p: DataProduct) -> dict:
    m = p.manifest
    return {"name": p.name, "title": m.display_title, "domain": m.domain, "description": " ".join(m.description.split()), "version": m.version,
            "status": m.status, "topic": p.topic, "classification": m.securityClassification,
            "refresh_period_s": int(m.refreshPeriod.total_seconds()), "refresh_mode": m.refreshMode, "tags": m.tag_list,
            "owner": {"email": m.dataProductOwner, "name": m.dataProductOwnerDisplayName},
            "maintainer": {"email": m.dataProductMaintainer, "name": m.dataProductMaintainerDisplayName},
            "contact": m.email, "report_issue": report_issue_link(p), "dpia": dpia(p),
            "subject_area": m.subjectArea, "access_requirements": m.accessRequirements,
            "retention_days": m.retentionPeriod, "upstream": m.upstreamProducts,
            "personal_fields": m.personalDataFields, "fields": field_rows(p)}


def report_issue_link(p: DataProduct) -> str:
    """The manifest's issue tracker, else an email to the team with the product named."""
    m = p.manifest
    return m.issueTracker or f"mailto:{m.email}?subject=" + quote(f"Problem with data product {p.name}")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A cell a spreadsheet will show as text, never run: one starting like a formula
    (``=HYPERLINK(...)``, ``+``, ``-``, ``@``, tab, CR) gets a leading apostrophe (OWASP's advice)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def dpia(p: DataProduct) -> dict:
    m = p.manifest
    if not m.dpiaRequired:
        return {"required": False, "status": "not required", "location": None}
    return {"required": True, "status": m.dpiaStatus or "required (status not stated)", "location": m.dpiaLocation}


def refresh_text(p: DataProduct) -> str:
    period = humanise(p.manifest.refreshPeriod.total_seconds())
    if p.manifest.refreshMode == "on-change":
        return f"on change (within {period} of a change to its inputs)"
    return f"every {period}"


def create_catalogue_router(registry: SchemaRegistryStore, facts: CatalogueFacts) -> APIRouter:
    router = APIRouter()

    def loaded(request: Request) -> tuple[dict[str, DataProduct], list[BrokenProduct]]:
        """The products that load, and the broken ones (a loader may return only the first)."""
        found = request.app.state.products_loader()
        return found if isinstance(found, tuple) else (found, [])

    def products(request: Request) -> dict[str, DataProduct]:
        return loaded(request)[0]

    def get(request: Request, name: str) -> DataProduct:
        all_products = products(request)
        if name not in all_products:
            raise HTTPException(404, f"No data product named {shown(name)}")
        return all_products[name]

    def versions(p: DataProduct) -> list[dict]:
        out, previous = [], None
        try:
            numbers = registry.versions(p.value_subject)
        except Exception:
            return []
        for n in numbers:
            v = registry.get_version(p.value_subject, n)
            schema = json.loads(v.schema)
            entity = next((f["type"][1] for f in schema["fields"] if f["name"] == "before"), None)
            diff = compare_schemas(previous, entity).to_dict() if previous and entity else None
            out.append({"version": v.version, "id": v.id, "diff": diff})
            previous = entity
        return out

    def kafka_facts(p: DataProduct) -> tuple[dict | None, list[dict]]:
        known = facts.facts(p)
        return (known.freshness.to_dict(), known.consumers) if known else (None, [])

    def kafka_status() -> dict:
        return {"checked_at": facts.checked_at, "error": facts.error, "failing_since": facts.failing_since,
                "interval_s": facts.interval}

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request):
        return catalogue_page(request)

    @router.get("/catalogue", response_class=HTMLResponse, tags=["catalogue"], summary="Search page")
    def catalogue_page(request: Request, q: str = "", domain: str = "", classification: str = "", tag: str = "",
                       owner: str = ""):
        all_products, broken = loaded(request)
        filters = Filters(domain, classification, tag, owner)
        return templates.TemplateResponse(request, "catalogue.html", {
            "title": "Data catalogue", "query": q, "filters": filters, "facets": facets(list(all_products.values())),
            "hits": find(list(all_products.values()), q, filters), "total": len(all_products),
            "lineage": lineage_svg(all_products), "broken": broken})

    @router.get("/catalogue/lineage.svg", tags=["catalogue"], summary="Lineage picture")
    def lineage_picture(request: Request):
        return Response(lineage_svg(products(request)), media_type="image/svg+xml")

    rendered: dict[str, tuple[DataProduct, float, bytes]] = {}

    @router.get("/catalogue/{name}", response_class=HTMLResponse, tags=["catalogue"], summary="Product page")
    async def product_page(request: Request, name: str):
        """Rendered at most once every ``PAGE_MAX_AGE_S`` per product (in the event loop, no
        thread hop): a busy page costs a dictionary lookup."""
        p = get(request, name)
        known = rendered.get(name)
        if known and known[0] is p and time.monotonic() - known[1] < PAGE_MAX_AGE_S:
            return HTMLResponse(known[2])
        page = render_product_page(request, p)
        rendered[name] = (p, time.monotonic(), page.body)
        return page

    def render_product_page(request: Request, p: DataProduct) -> HTMLResponse:
        fresh, consumers = kafka_facts(p)
        return templates.TemplateResponse(request, "product.html", {
            "title": p.manifest.display_title, "p": p, "fields": field_rows(p), "versions": versions(p),
            "freshness": fresh, "kafka": kafka_status(), "consumers": consumers, "refresh": refresh_text(p),
            "dpia": dpia(p), "report_issue": report_issue_link(p), "use": usage_of(request, p),
            "iceberg": iceberg_delivery(request.app.state.settings, p),
            "lineage": lineage_svg(products(request), highlight=p.name), "bridge": bridge_source(p)})

    def usage_of(request: Request, p: DataProduct):
        settings = request.app.state.settings
        return usage(p, registry_url=settings.schema_registry_url or str(request.base_url).rstrip("/"),
                     bootstrap=settings.kafka_bootstrap_servers,
                     parquet_root=str((settings.dataplatform_home / "parquet").resolve()))

    @router.get("/catalogue/{name}/schema.csv", tags=["catalogue"], summary="The product's fields as CSV")
    def schema_csv(request: Request, name: str):
        p = get(request, name)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, ["name", "type", "nullable", "personal", "doc"])
        writer.writeheader()
        for row in field_rows(p):
            writer.writerow({k: spreadsheet_safe(v) for k, v in row.items()})
        return PlainTextResponse(buf.getvalue(), media_type="text/csv",
                                 headers={"Content-Disposition": f'attachment; filename="{name}-schema.csv"'})

    @router.get("/api/products", tags=["catalogue"], summary="Search and filter products (all when nothing is given)")
    def api_products(request: Request, q: str = "",
                     domain: str = Query("", description="e.g. HMPPS"),
                     classification: str = Query("", description="Official or Official-Sensitive"),
                     tag: str = Query("", description="one of the products' tags"),
                     owner: str = Query("", description="the owner's email or name")) -> list[dict]:
        hits = find(list(products(request).values()), q, Filters(domain, classification, tag, owner))
        return [{**summary(h.product), "matched_in": h.matched_in} for h in hits]

    @router.get("/api/products/{name}", tags=["catalogue"], summary="One product: manifest, fields, versions, freshness, consumers")
    def api_product(request: Request, name: str) -> dict:
        p = get(request, name)
        fresh, consumers = kafka_facts(p)
        return {**summary(p), "versions": versions(p), "freshness": fresh, "consumers": consumers,
                "how_to_use": vars(usage_of(request, p)), "bridge": bridge_source(p)}

    @router.get("/api/lineage", tags=["catalogue"], summary="Lineage edges (upstream, downstream)")
    def api_lineage(request: Request) -> list[dict]:
        return [{"upstream": a, "downstream": b} for a, b in edges(products(request))]

    return router


def default_products_loader() -> tuple[dict[str, DataProduct], list[BrokenProduct]]:
    return survey_products()
