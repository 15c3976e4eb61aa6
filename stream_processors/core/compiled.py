"""A derivation spec compiled for the processor: what each entity contributes, to which
groups, and the figures and records that follow from a group's contributions.

Plain Python, no Faust. Stage 1 asks :meth:`CompiledDerivation.groups_of` and
:meth:`~CompiledDerivation.contribution_of` for every change; stage 2 asks
:meth:`~CompiledDerivation.measures` after every change of a group. A contribution is
``(role, *projection)``: the role of a member and the values of the fields its
``counts_when`` and its role's measures (sums, ``when`` conditions) read, so stage 2 decides
*when* a member counts, and towards which measures (the clock moves), without ever seeing
the rest of the entity, personal fields included.

Many members share a contribution (the same status and date), so stage 2 keeps a tally of
contributions and works out once per distinct contribution and day (memoised) which
measures it adds to: a large group's figures cost a walk over its distinct contributions,
as the hand-written processor's tally of (kind, day) did.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from dataplatform.derivations.expressions import epoch_day, iso_day
from dataplatform.derivations.spec import Derivation, Input
from dataplatform.products.reference import HERE, reference_lookup

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
        # per role: (measure, index in a contribution of the value it sums, or None for a count)
        self._own = {i.role: [(m, 1 + i.projection.index(m.field) if m.field else None) for m in d.own_measures
                              if m.role == i.role] for i in d.inputs}
        self._inputs_by_role = {i.role: i for i in d.inputs}
        self._zero = {**{role: 0 for role in self.roles}, **{m.name: 0 for m in d.own_measures}}
        folder = d.reference_dir or HERE
        self._roll_ups = [(r, reference_lookup(r.reference, r.from_column, r.to_column, folder),
                           reference_lookup(r.reference, r.to_column, r.name_column, folder) if r.name_column else {})
                          for r in d.groups.roll_ups]
        self._names = [(part, reference_lookup(part.reference, part.key, part.column, folder) if part.reference else {})
                       for part in d.groups.name]
        self._rules_for = {level: tuple(d.rules_for(level)) for level in d.groups.levels}
        self._above = {r.level: [u.level for u in d.groups.roll_ups[i:]] for i, r in enumerate(d.groups.roll_ups)}
        self._memo: dict[tuple, dict[Contribution, tuple]] = {}   # (today, horizon) -> contribution -> adds
        self._member_memo: dict[tuple, bool] = {}
        self._member_reads = {i.product: tuple(sorted(i.member_when.variables)) for i in d.inputs}
        self._groups_memo: dict[tuple, list[Group]] = {}
        self._failed: set[str] = set()

    # -- stage 1 ---------------------------------------------------------------------------------
    def groups_of(self, product: str, entity: dict | None) -> list[Group]:
        """The groups an entity belongs to: its own (the group key) and each roll-up of it
        (memoised per key: many entities share a group; the result is never changed)."""
        if entity is None:
            return []
        source = self.inputs[product]
        values = tuple(entity.get(f) for f in source.group_by)
        key = (product, values)
        found = self._groups_memo.get(key)
        if found is None:
            if len(self._groups_memo) > MEMO_LIMIT:
                self._groups_memo.clear()
            found = self._groups_memo[key] = self._groups(source, values)
        return found

    def _groups(self, source: Input, values: tuple) -> list[Group]:
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
            parent = parent_of.get(str(values[0])) if not rolled or rolled[-1][0] is not None else None
            fields[roll_up.level] = parent   # None: not in the reference data, counted at the levels below only
            rolled.append((parent, roll_up.level, {}))
        rolled = [group for group in rolled if group[0] is not None]
        for parent, level, own in rolled:   # a roll-up's fields: its own code and those above it
            own.update((above, fields[above]) for above in self._above[level])
        return [(code, groups.level, fields), *rolled]

    def contribution_of(self, product: str, entity: dict | None) -> Contribution | None:
        """What an entity adds to its groups (None: it is not a member now)."""
        if entity is None:
            return None
        source = self.inputs[product]
        reads = self._member_reads[product]
        if not self._member(source, reads, tuple(entity.get(name) for name in reads)):
            return None
        return (source.role, *(epoch_day(entity.get(f)) for f in source.projection))

    def _member(self, source: Input, reads: tuple[str, ...], values: tuple) -> bool:
        """``member_when`` for these values of the fields it reads (memoised: few distinct ones)."""
        key = (source.role, values)
        found = self._member_memo.get(key)
        if found is None:
            if len(self._member_memo) > MEMO_LIMIT:
                self._member_memo.clear()
            context = {name: epoch_day(v) for name, v in zip(reads, values)}
            found = self._member_memo[key] = bool(source.member_when(context))
        return found

    # -- stage 2 ---------------------------------------------------------------------------------
    def _day(self, today: int, horizon_days: int):
        """What a member with a given contribution adds to on ``today``: memoised per
        contribution for one day and horizon (the memo of older days is dropped)."""
        memo = self._memo.get((today, horizon_days))
        if memo is None:
            if len(self._memo) > 8 or sum(map(len, self._memo.values())) > MEMO_LIMIT:
                self._memo.clear()
            memo = self._memo[(today, horizon_days)] = {}

        def adds(contribution: Contribution) -> tuple:
            found = memo.get(contribution)
            if found is None:
                found = memo[contribution] = self._adds(contribution, today, horizon_days)
            return found
        return adds

    def _adds(self, contribution: Contribution, today: int, horizon_days: int) -> tuple:
        """``((measure, index of the value to add or None to add 1), ...)``: the role's count and
        each of its measures whose ``when`` holds; nothing when the member does not count."""
        role = contribution[0]
        source = self._inputs_by_role[role]
        context = dict(zip(source.projection, contribution[1:]), today=today, horizon_days=horizon_days)
        if source.counts_when is not None and not self._holds(source.counts_when, context, f"inputs[{role}].counts_when"):
            return ()
        return ((role, None), *((m.name, index) for m, index in self._own[role]
                                if m.when is None or self._holds(m.when, context, f"measures.{m.name}.when")))

    def _holds(self, condition, context: dict, where: str) -> bool:
        try:
            return bool(condition(context))
        except Exception as exc:  # noqa: BLE001 - e.g. a null date: that member does not count
            if where not in self._failed:
                self._failed.add(where)
                log.warning("%s: %s failed (%s): such members do not count there", self.derivation.name, where, exc)
            return False

    def measures(self, tally: Counter, today: int, horizon_days: int) -> dict[str, Any]:
        """Count per role, the spec's counts and sums, and the derived measures over the
        members that count on ``today``."""
        out: dict[str, Any] = dict(self._zero)
        adds = self._day(today, horizon_days)
        for contribution, n in tally.items():
            if n > 0:
                for name, index in adds(contribution):
                    out[name] += n if index is None else n * (contribution[index] or 0)
        for name, expression in self.derivation.derived:
            out[name] = expression(out)
        return out

    # -- outputs ---------------------------------------------------------------------------------
    def rules_for(self, level: str) -> tuple:
        return self._rules_for.get(level, ())

    def view_of(self, group) -> dict[str, Any]:
        """:meth:`group_view` of a :class:`GroupState`, kept on it (a group's key and level never change)."""
        if group.view is None or group.view["level"] != group.level:
            group.view = self.group_view(group.code, group.level, group.fields)
        return group.view

    def group_view(self, code: str, level: str, fields: dict[str, Any]) -> dict[str, Any]:
        """``group`` as output expressions read it: code, name, level, the group's fields (each
        roll-up level's code, None when the reference data lacks the group), each roll-up's
        name (``group.region_name``: its own at its level, the one it is in below it) and, at
        the base level, each name part looked up in reference data (``group.<column>``)."""
        view = {**fields, "code": code, "level": level}
        for roll_up, _, names in self._roll_ups:
            if roll_up.name_column and roll_up.level in fields:
                parent = fields[roll_up.level]
                view[roll_up.name_column] = None if parent is None else names.get(parent, parent)
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
