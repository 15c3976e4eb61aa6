"""Search over products' names, titles, descriptions, tags and field names, and filters
by domain, classification, tag and owner.

Every word of the query must match somewhere; results say where each product matched so
the page can show why it was found. Small catalogues need no search engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataplatform.products.product import DataProduct


@dataclass
class SearchHit:
    product: DataProduct
    matched_in: list[str]
    score: int


def _haystacks(p: DataProduct) -> dict[str, str]:
    m = p.manifest
    return {
        "name": f"{p.name.replace('_', ' ')} {p.name} {m.display_title}",
        "description": m.description,
        "tags": " ".join(m.tag_list),
        "fields": " ".join(f"{f['name']} {f['name'].replace('_', ' ')} {f.get('doc', '')}" for f in p.entity_fields()),
        "domain": f"{m.domain} {m.subjectArea or ''}",
    }


WEIGHTS = {"name": 5, "tags": 3, "fields": 2, "description": 1, "domain": 1}


def search(products: list[DataProduct], query: str) -> list[SearchHit]:
    words = [w for w in query.lower().split() if w]
    if not words:
        return [SearchHit(p, [], 0) for p in products]
    hits = []
    for p in products:
        stacks = {k: v.lower() for k, v in _haystacks(p).items()}
        matched: set[str] = set()
        score = 0
        for word in words:
            where = [k for k, text in stacks.items() if word in text]
            if not where:
                break
            matched.update(where)
            score += sum(WEIGHTS[k] for k in where)
        else:
            hits.append(SearchHit(p, sorted(matched, key=list(WEIGHTS).index), score))
    return sorted(hits, key=lambda h: (-h.score, h.product.name))


@dataclass
class Filters:
    """The catalogue's filters; an empty one matches everything."""

    domain: str = ""
    classification: str = ""
    tag: str = ""
    owner: str = ""

    def matches(self, p: DataProduct) -> bool:
        m = p.manifest
        owners = {m.dataProductOwner.lower(), m.dataProductOwnerDisplayName.lower()}
        return ((not self.domain or str(m.domain).lower() == self.domain.lower())
                and (not self.classification or str(m.securityClassification).lower() == self.classification.lower())
                and (not self.tag or self.tag.lower() in {t.lower() for t in m.tag_list})
                and (not self.owner or self.owner.lower() in owners))

    def active(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}


def find(products: list[DataProduct], query: str, filters: Filters) -> list[SearchHit]:
    """Search, then keep the hits that pass the filters."""
    return [h for h in search(products, query) if filters.matches(h.product)]


def facets(products: list[DataProduct]) -> dict[str, list[dict]]:
    """Each filter's values (value, label, how many products) for the filter menus."""
    found: dict[str, dict[str, dict]] = {"domain": {}, "classification": {}, "tag": {}, "owner": {}}
    for p in products:
        m = p.manifest
        for facet, values in (("domain", [(str(m.domain), str(m.domain))]),
                              ("classification", [(str(m.securityClassification),) * 2]),
                              ("tag", [(t, t) for t in m.tag_list]),
                              ("owner", [(m.dataProductOwner, m.dataProductOwnerDisplayName)])):
            for value, label in values:
                entry = found[facet].setdefault(value, {"value": value, "label": label, "count": 0})
                entry["count"] += 1
    return {facet: sorted(values.values(), key=lambda e: e["label"].lower()) for facet, values in found.items()}
