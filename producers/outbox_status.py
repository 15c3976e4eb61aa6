"""What an outbox table holds, per product: rows waiting, the oldest waiting, the last published.

Read straight from the service's database (``dataplatform outbox status``), so it answers
whether or not a relay runs: a growing "waiting" with an old "oldest waiting" and no
recent "last published" is a relay that is stopped or stuck.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, case, func, select

from dataplatform.producers.outbox import DEFAULT_TABLE, outbox_table
from dataplatform.producers.outbox_relay import as_utc


@dataclass(frozen=True)
class ProductBacklog:
    product: str
    waiting: int
    oldest_waiting: dt.datetime | None
    last_published: dt.datetime | None
    published: int

    def oldest_waiting_age(self, now: dt.datetime) -> float | None:
        """Seconds the oldest waiting row has waited: the relay's lag for this product."""
        return None if self.oldest_waiting is None else max(0.0, (now - self.oldest_waiting).total_seconds())

    def to_dict(self, now: dt.datetime) -> dict[str, Any]:
        return {"product": self.product, "waiting": self.waiting,
                "oldest_waiting": self.oldest_waiting and self.oldest_waiting.isoformat(),
                "oldest_waiting_age_seconds": self.oldest_waiting_age(now),
                "last_published": self.last_published and self.last_published.isoformat(),
                "published": self.published}


def outbox_status(engine: Engine, table: str = DEFAULT_TABLE) -> list[ProductBacklog]:
    """One line per product that has rows in the table, by product name."""
    t = outbox_table(table)
    waiting = t.c.sent_at.is_(None)
    query = (select(t.c.product, func.count(case((waiting, 1))), func.min(case((waiting, t.c.created_at))),
                    func.max(t.c.sent_at), func.count(t.c.sent_at))
             .group_by(t.c.product).order_by(t.c.product))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [ProductBacklog(product, n_waiting, oldest and as_utc(oldest), last and as_utc(last), n_sent)
            for product, n_waiting, oldest, last, n_sent in rows]
