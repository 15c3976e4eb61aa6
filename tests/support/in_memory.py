"""Both stages of the supply/demand join in memory, without Kafka: what the unit tests
drive to check the counting logic end to end."""

from __future__ import annotations

from dataplatform.stream_processors.area_state import AreaState, Figures
from dataplatform.stream_processors.supply_demand import Move, decide


class EntityTracker:
    """Stage 1 in memory ."""

    def __init__(self) -> None:
        self.states: dict[str, dict] = {}

    def apply(self, product: str, entity_key: str, op: str, entity: dict | None, position: int,
              ts_ms: int) -> list[Move]:
        key = f"{product}:{entity_key}"
        decision = decide(product, key, op, entity, position, ts_ms, self.states.get(key))
        if decision.state is not None:
            self.states[key] = decision.state
        return decision.moves


class AreaBook:
    """Stage 2 in memory: every area's state; applies moves from stage 1."""

    def __init__(self) -> None:
        self.areas: dict[str, AreaState] = {}

    def apply(self, move: Move) -> bool:
        state = self.areas.setdefault(move.area_code, AreaState(move.area_code, move.level, move.region_code))
        return state.apply(move)

    def figures(self, area_code: str, today: int, horizon_days: int) -> Figures:
        state = self.areas.get(area_code)
        return state.figures(today, horizon_days) if state else Figures(0, 0)
