"""Stage 2's view of one group: the contribution of each member, and the measures derived from them.

Counts are never kept as running +1/-1 totals: a group holds the set of entities that
contribute to it (entity key -> contribution) and the measures are derived from that set
when asked. Re-applying the same fact is therefore a no-op, and a duplicated, replayed or
reprocessed move can never change a count.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dataplatform.stream_processors.core.compiled import CompiledDerivation, Contribution
from dataplatform.stream_processors.core.entity_step import Move


@dataclass
class GroupState:
    """The contributions to one group, keyed by entity; measures derived on demand."""

    code: str
    level: str
    fields: dict[str, Any] = field(default_factory=dict)
    entities: dict[str, Contribution] = field(default_factory=dict)
    max_ts: int = 0
    _tally: Counter | None = field(default=None, repr=False, compare=False)
    view: dict[str, Any] | None = field(default=None, repr=False, compare=False)   # see CompiledDerivation.view_of

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

    def measures(self, compiled: CompiledDerivation, today: int, horizon_days: int) -> dict[str, Any]:
        """The measures over the members that count on ``today`` with ``horizon_days``.

        Counted from a tally of contributions (how many members share each one), kept up
        to date by :meth:`apply`, so the rules can be evaluated after every change of a
        large group without walking all its members."""
        if self._tally is None:
            self._tally = Counter(self.entities.values())
        return compiled.measures(self._tally, today, horizon_days)
