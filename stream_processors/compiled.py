"""A derivation spec compiled for the processor: what each entity contributes, to which
groups, and the figures and records that follow from a group's contributions.

Plain Python, no Faust. Stage 1 asks :meth:`CompiledDerivation.groups_of` and
:meth:`~CompiledDerivation.contribution_of` for every change; stage 2 asks
:meth:`~CompiledDerivation.measures` after every change of a group. A contribution is
``(role, *projection)``: the role of a member and the values of the fields its
``counts_when`` and sums read, so stage 2 decides *when* a member counts (the clock moves)
without ever seeing the rest of the entity, personal fields included.

Many members share a contribution (the same status and date), so stage 2 keeps a tally of
contributions and evaluates ``counts_when`` once per distinct contribution and day
(memoised): a large group's figures cost a walk over its distinct contributions, as the
hand-written processor's tally of (kind, day) did.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from dataplatform.derivations.expressions import epoch_day, iso_day
from dataplatform.derivations.spec import Derivation, Input
from dataplatform.products.reference import reference_lookup

log = logging.getLogger(__name__)
Contribution = tuple      # (role, *projection)
Group = tuple             # (code, level, fields): fields are what ``group.<name>`` reads in outputs
MEMO_LIMIT = 200_000
NAME_SEPARATOR = " · "


class CompiledDerivation:
    def __init__(self, derivation: Derivation) -> None:
        self.derivation = d = derivation
        self.inputs: dict[str, Input] = {i.product: i for i in d.inputs}
        self.roles = tuple(i.role for i in d.inputs)
        self._sums = {i.role: [(s.name, 1 + i.projection.index(s.field)) for s in d.sums if s.role == i.role]
                      for i in d.inputs}
        self._counts_when = {i.role: i for i in d.inputs}
        self._roll_ups = [(r, reference_lookup(r.reference, r.from_column, r.to_column),
                           reference_lookup(r.reference, r.to_column, r.name_column) if r.name_column else {})
                          for r in d.groups.roll_ups]
        self._names = [(part, reference_lookup(part.reference, part.key, part.column) if part.reference else {})
                       for part in d.groups.name]
        self._memo: dict[tuple, bool] = {}
        self._failed: set[str] = set()

    # -- stage 1 ---------------------------------------------------------------------------------
    def groups_of(self, product: str, entity: dict | None) -> list[Group]:
        """The groups an entity belongs to: its own (the group key) and each roll-up of it."""
        if entity is None:
            return []
        source = self.inputs[product]
        values = [entity.get(f) for f in source.group_by]
        if any(v is None for v in values):
            return []
        keyed = [epoch_day(v) for v in values]
        code = "/".join(iso_day(v) if f in source.dates else str(v).replace("|", "/")
                        for f, v in zip(source.group_by, keyed))
        groups = self.derivation.groups
        fields: dict[str, Any] = dict(zip(groups.fields, keyed))
        fields[groups.level] = code
        rolled = []
        for roll_up, parent_of, _ in self._roll_ups:
            parent = parent_of.get(str(values[0]))
            if parent is None:
                break   # not in the reference data: counted at the levels below only
            fields[roll_up.level] = parent
            rolled.append((parent, roll_up.level, {r.level: fields[r.level] for r in groups.roll_ups
                                                   if r.level in fields and _at_or_above(groups, r.level, roll_up.level)}))
        return [(code, groups.level, fields), *rolled]

    def contribution_of(self, product: str, entity: dict | None) -> Contribution | None:
        """What an entity adds to its groups (None: it is not a member now)."""
        if entity is None:
            return None
        source = self.inputs[product]
        context = {name: epoch_day(entity.get(name)) for name in source.member_when.variables}
        if not source.member_when(context):
            return None
        return (source.role, *(epoch_day(entity.get(f)) for f in source.projection))

    # -- stage 2 ---------------------------------------------------------------------------------
    def counts(self, contribution: Contribution, today: int, horizon_days: int) -> bool:
        """Whether a member with this contribution counts on ``today`` (memoised per day)."""
        key = (contribution, today, horizon_days)
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) > MEMO_LIMIT:
                self._memo.clear()
            found = self._memo[key] = self._counts(contribution, today, horizon_days)
        return found

    def _counts(self, contribution: Contribution, today: int, horizon_days: int) -> bool:
        source = self._counts_when[contribution[0]]
        if source.counts_when is None:
            return True
        context = dict(zip(source.projection, contribution[1:]), today=today, horizon_days=horizon_days)
        try:
            return bool(source.counts_when(context))
        except Exception as exc:  # noqa: BLE001 - e.g. a null date: that member does not count
            if source.role not in self._failed:
                self._failed.add(source.role)
                log.warning("%s: inputs[%s].counts_when failed (%s): such members do not count",
                            self.derivation.name, source.role, exc)
            return False

    def measures(self, tally: Counter, today: int, horizon_days: int) -> dict[str, Any]:
        """Count per role, sums and derived measures over the members that count on ``today``."""
        out: dict[str, Any] = {role: 0 for role in self.roles}
        for name, _ in self._all_sums():
            out[name] = 0
        for contribution, n in tally.items():
            if n > 0 and self.counts(contribution, today, horizon_days):
                role = contribution[0]
                out[role] += n
                for name, index in self._sums[role]:
                    out[name] += n * (contribution[index] or 0)
        for name, expression in self.derivation.derived:
            out[name] = expression(out)
        return out

    def _all_sums(self):
        return [pair for pairs in self._sums.values() for pair in pairs]

    # -- outputs ---------------------------------------------------------------------------------
    def group_view(self, code: str, level: str, fields: dict[str, Any]) -> dict[str, Any]:
        """``group`` as output expressions read it: code, name, level, the group's fields and,
        at the base level, each name part looked up in reference data (``group.<column>``)."""
        view = {**fields, "code": code, "level": level}
        if level != self.derivation.groups.level:
            names = next((n for r, _, n in self._roll_ups if r.level == level), {})
            return {**view, "name": names.get(code, code)}
        parts = []
        for part, names in self._names:
            value = fields.get(part.field)
            shown = iso_day(value) if isinstance(value, int) and self._is_date_field(part.field) else str(value)
            parts.append(names.get(shown, shown))
            if part.column:
                view[part.column] = parts[-1]
        return {**view, "name": NAME_SEPARATOR.join(parts) if parts else code}

    def _is_date_field(self, field: str) -> bool:
        index = self.derivation.groups.fields.index(field)
        first = self.derivation.inputs[0]
        return first.group_by[index] in first.dates

    def record(self, fields, group: dict[str, Any], measures: dict[str, Any]) -> dict[str, Any]:
        context = {**measures, "group": group}
        return {name: expression(context) for name, expression in fields}


def _at_or_above(groups, level: str, of: str) -> bool:
    order = [r.level for r in groups.roll_ups]
    return order.index(level) >= order.index(of)
