"""The scripted scenarios are plans computed from the seed alone: no broker needed."""

from __future__ import annotations

import threading

from dataplatform.producers.simulators.scenarios import (INTERPRETER_SHORTAGE_HEARINGS,
                                                         MANCHESTER, NORTH_WEST, PETERBOROUGH_MAGISTRATES, POLISH,
                                                         SHORTAGE_HORIZON_DAYS, Step, run_steps, scenario_plan)
import pytest

from dataplatform.products.reference import local_authorities


def test_the_same_seed_gives_the_same_plan_and_another_seed_another() -> None:
    first = scenario_plan("shortage-north-west", seed=42)
    again = scenario_plan("shortage-north-west", seed=42)
    other = scenario_plan("shortage-north-west", seed=43)
    assert first == again
    assert first.releases != other.releases


def test_the_shortage_is_raised_in_the_north_west_then_cleared() -> None:
    plan = scenario_plan("shortage-north-west", seed=7)
    assert [p.name for p in plan.phases] == ["warm-up", "raise", "hold", "clear"]
    assert 60 <= plan.duration <= 90

    scheduled = [s for s in plan.releases if s.action == "schedule"]
    assert scheduled and all(s.phase == "raise" for s in scheduled)
    assert all(local_authorities()[str(s.arg("area"))].region_code == NORTH_WEST for s in scheduled)
    assert all(0 < int(s.arg("days_ahead")) < SHORTAGE_HORIZON_DAYS for s in scheduled)  # type: ignore[arg-type]
    assert sum(s.arg("area") == MANCHESTER for s in scheduled) > len(scheduled) / 3

    lets = [s for s in plan.housing if s.action == "let_unit"]
    assert lets and all(s.phase == "raise" and s.arg("region") == NORTH_WEST for s in lets)
    # nothing adds North West supply between the warm-up and the clear phase
    for step in plan.housing:
        if step.phase in ("raise", "hold") and step.action == "random":
            assert step.arg("exclude_region") == NORTH_WEST
    nw_added_in_warmup = sum(1 for s in plan.housing if s.phase == "warm-up"
                             and local_authorities()[str(s.arg("area"))].region_code == NORTH_WEST)
    assert nw_added_in_warmup < len(lets)  # the raise phase can take every available unit
    cleared = [s for s in plan.housing if s.phase == "clear" and s.action == "add_unit"
               and local_authorities()[str(s.arg("area"))].region_code == NORTH_WEST]
    assert len(cleared) > len(scheduled)  # supply outgrows the demand it has to meet


def test_the_interpreter_shortage_lists_polish_hearings_tomorrow_then_books_their_interpreters() -> None:
    plan = scenario_plan("interpreter-shortage", seed=7)
    assert plan == scenario_plan("interpreter-shortage", seed=7)
    assert [p.name for p in plan.phases] == ["warm-up", "raise", "hold", "clear"]
    assert plan.services == ("hearings", "bookings") and 40 <= plan.duration <= 60
    slot = {"court": PETERBOROUGH_MAGISTRATES, "days_ahead": 1, "language": POLISH}

    listed = [s for s in plan.hearings if s.action == "list_hearing"]
    assert len(listed) == INTERPRETER_SHORTAGE_HEARINGS
    assert all(s.phase == "raise" and dict(s.args) == slot for s in listed)
    booked = [s for s in plan.bookings if s.action == "book"]
    assert len(booked) == len(listed)  # one interpreter per hearing: full cover clears the warning
    assert all(s.phase == "clear" and dict(s.args) == slot for s in booked)
    # everything else is ordinary activity kept away from the court
    for step in plan.hearings + plan.bookings:
        assert step.action in ("list_hearing", "book") or step.arg("exclude_court") == PETERBOROUGH_MAGISTRATES
    for service in (plan.hearings, plan.bookings):
        assert all(a.at <= b.at for a, b in zip(service, service[1:]))
        assert {s.phase for s in service} == {"warm-up", "raise", "hold", "clear"}


def test_time_scale_shrinks_the_timeline_not_the_changes() -> None:
    full = scenario_plan("shortage-north-west", seed=1)
    fast = scenario_plan("shortage-north-west", seed=1, time_scale=0.1)
    assert fast.duration == pytest.approx(full.duration * 0.1)
    assert [(s.action, s.args) for s in fast.housing] == [(s.action, s.args) for s in full.housing]
    assert all(a.at <= b.at for a, b in zip(full.housing, full.housing[1:]))


def test_an_unknown_scenario_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="interpreter-shortage, shortage-north-west"):
        scenario_plan("flood", seed=1)


def test_run_steps_stops_at_count_and_reports_progress() -> None:
    applied: list[Step] = []
    seen: list[tuple[int, int | None]] = []
    steps = tuple(Step(0.0, "random") for _ in range(10))
    done = run_steps(steps, applied.append, count=4, progress=lambda d, t: seen.append((d, t)))
    assert done == 4 and len(applied) == 4 and seen[-1] == (4, 4)


def test_run_steps_stops_when_asked() -> None:
    stop = threading.Event()
    stop.set()
    applied: list[Step] = []
    assert run_steps((Step(0.0, "random"),), applied.append, stop_event=stop) == 0
    assert applied == []


def test_run_steps_keeps_to_the_timeline() -> None:
    import time

    started = time.monotonic()
    done = run_steps((Step(0.0, "random"), Step(0.2, "random")), lambda s: None)
    assert done == 2 and time.monotonic() - started >= 0.2
