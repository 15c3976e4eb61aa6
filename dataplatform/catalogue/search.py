"""Search over products' names, descriptions, tags and field names.

Every word of the query must match somewhere; results say where each product matched so
the page can show why it was found. Small catalogues need no search engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.product import DataProduct


@dataclass
class SearchHit:
    product: DataProduct
    matched_in: list[str]
    score: int


def _haystacks(p: DataProduct) -> dict[str, str]:
    m = p.manifest
    return {
        "name": p.name.replace("_", " ") + " " + p.name,
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
