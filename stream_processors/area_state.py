"""Stage 2's view of one area: the contribution of each entity, and the figures derived from them.

Counts are never kept as running +1/-1 totals: an area holds the set of entities that
contribute to it (entity key -> contribution) and the figures are derived from that set
when asked. Re-applying the same fact is therefore a no-op, and a duplicated, replayed or
reprocessed move can never change a count.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dataplatform.stream_processors.supply_demand import SUPPLY, Contribution, Move


@dataclass(frozen=True)
class Figures:
    supply: int
    demand: int


@dataclass
class AreaState:
    """The contributions to one area, keyed by entity; figures derived on demand."""

    area_code: str
    level: str
    region_code: str
    entities: dict[str, Contribution] = field(default_factory=dict)
    max_ts: int = 0
    _tally: Counter | None = field(default=None, repr=False, compare=False)

    def apply(self, move: Move) -> bool:
        """Set the entity's contribution; True when that changed anything."""
        old = self.entities.get(move.entity_key)
        if old == move.contribution:
            return False
        if move.contribution is None:
            del self.entities[move.entity_key]
        else:
            self.entities[move.entity_key] = move.contribution
        if self._tally is not None:
            if old is not None:
                self._tally[old] -= 1
            if move.contribution is not None:
                self._tally[move.contribution] += 1
        self.max_ts = max(self.max_ts, move.ts_ms)
        return True

    def figures(self, today: int, horizon_days: int) -> Figures:
        """Supply and demand whose date is on or before ``today + horizon_days``.

        Counted from a tally of contributions (how many entities per kind and day), kept up
        to date by :meth:`apply`, so the rules can be evaluated after every change of a large
        area without walking all its entities.
        """
        if self._tally is None:
            self._tally = Counter(self.entities.values())
        last_day = today + horizon_days
        supply = demand = 0
        for (kind, day), n in self._tally.items():
            if day is None or day <= last_day:
                if kind == SUPPLY:
                    supply += n
                else:
                    demand += n
        return Figures(supply, demand)

    def to_dict(self) -> dict[str, Any]:
        return {"area": self.area_code, "level": self.level, "region": self.region_code,
                "entities": {k: list(v) for k, v in self.entities.items()}, "max_ts": self.max_ts}
