"""Both stages of a compiled derivation in memory, without Kafka: what the unit tests drive
to check the counting logic end to end (the housing example's spec by default)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from dataplatform.derivations.loading import get_derivation
from dataplatform.derivations.spec import Rule
from dataplatform.stream_processors.core.compiled import CompiledDerivation
from dataplatform.stream_processors.core.entity_step import Move, decide
from dataplatform.stream_processors.core.group_state import GroupState

HOUSING_SPEC = "housing_supply_demand"


def housing() -> CompiledDerivation:
    return CompiledDerivation(get_derivation(HOUSING_SPEC))


def housing_rule(**changes: Any) -> Rule:
    """The housing example's shortfall rule, with ``changes``."""
    return dataclasses.replace(get_derivation(HOUSING_SPEC).rules[0], **changes)


class EntityTracker:
    """Stage 1 in memory."""

    def __init__(self, compiled: CompiledDerivation | None = None) -> None:
        self.compiled = compiled or housing()
        self.states: dict[str, dict] = {}

    def apply(self, product: str, entity_key: str, op: str, entity: dict | None, position: int,
              ts_ms: int) -> list[Move]:
        key = f"{product}:{entity_key}"
        decision = decide(self.compiled, product, key, op, entity, position, ts_ms, self.states.get(key))
        if decision.state is not None:
            self.states[key] = decision.state
        return decision.moves


class GroupBook:
    """Stage 2 in memory: every group's state; applies moves from stage 1."""

    def __init__(self, compiled: CompiledDerivation | None = None) -> None:
        self.compiled = compiled or housing()
        self.groups: dict[str, GroupState] = {}

    def apply(self, move: Move) -> bool:
        state = self.groups.setdefault(move.code, GroupState(move.code, move.level, move.fields))
        return state.apply(move)

    def measures(self, code: str, today: int, horizon_days: int) -> dict[str, Any]:
        state = self.groups.get(code)
        return (state.measures(self.compiled, today, horizon_days) if state
                else self.compiled.measures(Counter(), today, horizon_days))
