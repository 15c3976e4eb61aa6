"""Scripted scenarios and the pacing both simulators share.

A simulator turns *steps* into business changes. Without a scenario every step is
``random`` (ordinary activity, chosen by the simulator's seeded RNG against its state). A
scenario is a plan of steps for both simulators on one timeline, computed up front from the
seed alone (no broker, no clock), so a run is predictable and the plan is unit-testable.

``shortage-north-west`` (about 60 s at the default rate, ``time_scale`` shrinks it):

    warm-up  0-5 s    housing adds units everywhere (some available in the North West);
                      releases: ordinary activity
    raise    5-30 s   releases schedules many cases into North West areas (mostly
                      Manchester) due within 28 days; housing lets the North West's
                      available units and changes units elsewhere only
    hold     30-40 s  ordinary activity outside the North West: the shortage persists
    clear    40-60 s  housing makes many North West units available (more than the
                      demand); releases moves North West cases on (released, housed)

``interpreter-shortage`` (45 s at the default rate), for the hearings and bookings
simulators; ordinary activity throughout keeps away from Peterborough Magistrates' Court:

    warm-up  0-5 s    ordinary listing and booking elsewhere
    raise    5-20 s   listing lists 4 hearings at Peterborough Magistrates' Court for
                      tomorrow, each needing a Polish interpreter; nobody books one
                      (4 hearings, 0 bookings: RED from the first hearing)
    hold     20-30 s  ordinary activity elsewhere: the shortage persists
    clear    30-45 s  booking books 4 Polish interpreters there for tomorrow
                      (4 hearings, 4 bookings: full cover, the warning clears)
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dataplatform.products.reference import local_authorities

NORTH_WEST = "E12000002"
MANCHESTER = "E08000003"
DEFAULT_RATE = 5.0
SHORTAGE_HORIZON_DAYS = 28
PETERBOROUGH_MAGISTRATES = "PBOMC"
POLISH = "pol"
INTERPRETER_SHORTAGE_HEARINGS = 4
INTERPRETER_HORIZON_DAYS = 7


@dataclass(frozen=True)
class Step:
    """One business change to make at ``at`` seconds after the start."""

    at: float
    action: str  # random | add_unit | let_unit | schedule | resolve | list_hearing | book
    args: tuple[tuple[str, object], ...] = ()
    phase: str = ""

    def arg(self, name: str, default: object = None) -> object:
        return dict(self.args).get(name, default)


@dataclass(frozen=True)
class Phase:
    name: str
    start: float
    end: float


@dataclass(frozen=True)
class ScenarioPlan:
    name: str
    seed: int
    rate: float
    phases: tuple[Phase, ...]
    housing: tuple[Step, ...] = field(default=())
    releases: tuple[Step, ...] = field(default=())
    hearings: tuple[Step, ...] = field(default=())
    bookings: tuple[Step, ...] = field(default=())

    @property
    def duration(self) -> float:
        return self.phases[-1].end

    @property
    def services(self) -> tuple[str, ...]:
        """The simulators this scenario has steps for."""
        return tuple(name for name in ("housing", "releases", "hearings", "bookings") if getattr(self, name))


def region_areas(region: str) -> list[str]:
    return sorted(code for code, area in local_authorities().items() if area.region_code == region)


def _north_west_area(rng: random.Random) -> str:
    """Mostly Manchester, sometimes elsewhere in the North West."""
    others = [c for c in region_areas(NORTH_WEST) if c != MANCHESTER]
    return MANCHESTER if rng.random() < 0.6 else rng.choice(others)


def _phase_steps(phase: Phase, rate: float, make: Callable[[float], Step]) -> list[Step]:
    count = max(1, round((phase.end - phase.start) * rate))
    return [make(phase.start + i * (phase.end - phase.start) / count) for i in range(count)]


def shortage_north_west(seed: int, rate: float = DEFAULT_RATE, time_scale: float = 1.0) -> ScenarioPlan:
    rng = random.Random(f"shortage-north-west:{seed}")
    s = time_scale
    phases = (Phase("warm-up", 0, 5 * s), Phase("raise", 5 * s, 30 * s), Phase("hold", 30 * s, 40 * s),
              Phase("clear", 40 * s, 60 * s))
    per_second = rate / s  # as many changes per phase as at full length, just faster
    warm, raise_, hold, clear = phases
    everywhere = sorted(local_authorities())
    housing: list[Step] = []
    releases: list[Step] = []

    def add_unit(at: float, area: str, phase: str) -> Step:
        return Step(at, "add_unit", (("area", area), ("status", "available")), phase)

    housing += _phase_steps(warm, per_second, lambda at: add_unit(
        at, _north_west_area(rng) if rng.random() < 0.4 else rng.choice(everywhere), warm.name))
    releases += _phase_steps(warm, per_second, lambda at: Step(at, "random", (), warm.name))
    housing += _phase_steps(raise_, per_second, lambda at: Step(at, "let_unit", (("region", NORTH_WEST),), raise_.name))

    def schedule(at: float) -> Step:
        if rng.random() < 0.7:
            return Step(at, "schedule", (("area", _north_west_area(rng)),
                                         ("days_ahead", rng.randint(2, SHORTAGE_HORIZON_DAYS - 2))), raise_.name)
        return Step(at, "random", (("exclude_region", NORTH_WEST),), raise_.name)

    releases += _phase_steps(raise_, per_second, schedule)
    for service in (housing, releases):
        service += _phase_steps(hold, per_second, lambda at: Step(at, "random", (("exclude_region", NORTH_WEST),),
                                                                    hold.name))
    # Supply outgrows demand: two units per step against at most 0.7 cases per raise step.
    for at in (step.at for step in _phase_steps(clear, per_second, lambda at: Step(at, "noop"))):
        housing.append(add_unit(at, _north_west_area(rng), clear.name))
        housing.append(add_unit(at, _north_west_area(rng), clear.name))
    releases += _phase_steps(clear, per_second, lambda at: Step(at, "resolve", (("region", NORTH_WEST),), clear.name))
    return ScenarioPlan("shortage-north-west", seed, rate, phases, tuple(housing), tuple(releases))


def _spread(phase: Phase, count: int, action: str, args: tuple[tuple[str, object], ...]) -> list[Step]:
    """``count`` steps evenly through ``phase``, none on its edges."""
    width = (phase.end - phase.start) / count
    return [Step(phase.start + (i + 0.5) * width, action, args, phase.name) for i in range(count)]


def interpreter_shortage(seed: int, rate: float = DEFAULT_RATE, time_scale: float = 1.0) -> ScenarioPlan:
    s = time_scale
    phases = (Phase("warm-up", 0, 5 * s), Phase("raise", 5 * s, 20 * s), Phase("hold", 20 * s, 30 * s),
              Phase("clear", 30 * s, 45 * s))
    per_second = rate / s
    hearings: list[Step] = []
    bookings: list[Step] = []
    for phase in phases:
        for service in (hearings, bookings):
            service += _phase_steps(phase, per_second, lambda at, name=phase.name: Step(
                at, "random", (("exclude_court", PETERBOROUGH_MAGISTRATES),), name))
    tomorrow_in_polish = (("court", PETERBOROUGH_MAGISTRATES), ("days_ahead", 1), ("language", POLISH))
    hearings += _spread(phases[1], INTERPRETER_SHORTAGE_HEARINGS, "list_hearing", tomorrow_in_polish)
    bookings += _spread(phases[3], INTERPRETER_SHORTAGE_HEARINGS, "book", tomorrow_in_polish)
    by_time = lambda step: step.at  # noqa: E731 - stable: ordinary steps first at equal times
    return ScenarioPlan("interpreter-shortage", seed, rate, phases, hearings=tuple(sorted(hearings, key=by_time)),
                        bookings=tuple(sorted(bookings, key=by_time)))


SCENARIOS: dict[str, Callable[..., ScenarioPlan]] = {"shortage-north-west": shortage_north_west,
                                                      "interpreter-shortage": interpreter_shortage}


def scenario_plan(name: str, *, seed: int, rate: float = DEFAULT_RATE, time_scale: float = 1.0) -> ScenarioPlan:
    """The plan of scenario ``name`` (ValueError naming the known ones if there is none)."""
    try:
        build = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"no scenario named {name!r}; known: {', '.join(sorted(SCENARIOS))}") from None
    return build(seed, rate, time_scale)


def random_steps(rate: float) -> Iterator[Step]:
    """Ordinary activity forever, one change every 1/rate seconds."""
    i = 0
    while True:
        yield Step(i / rate, "random")
        i += 1


Progress = Callable[[int, int | None], None]


@dataclass
class SimulationReport:
    """What a simulator run did: business changes made, events published, time taken."""

    service: str
    changes: int
    published: int
    seconds: float
    unsent: int = 0


def run_steps(steps: Iterator[Step] | tuple[Step, ...], apply: Callable[[Step], None], *,
              count: int | None = None, duration: float | None = None, stop_event: threading.Event | None = None,
              progress: Progress | None = None, total: int | None = None) -> int:
    """Apply ``steps`` on their timeline until they end, ``count`` are done, ``duration``
    has passed or ``stop_event`` is set; the number applied."""
    stop_event = stop_event or threading.Event()
    start = time.monotonic()
    done = 0
    if count is not None:
        total = count if total is None else min(count, total)
    for step in steps:
        if count is not None and done >= count:
            break
        if duration is not None and step.at >= duration:
            break
        delay = start + step.at - time.monotonic()
        if delay > 0 and stop_event.wait(delay):
            break
        if stop_event.is_set():
            break
        apply(step)
        done += 1
        if progress:
            progress(done, total)
    return done
