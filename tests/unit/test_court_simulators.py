"""The hearings and bookings simulators' business changes, run without a broker: a recording
publisher stands in for the SDK (these tests are about which changes the services make, not
about publishing them), and the independent recomputation says what cover they leave."""

from __future__ import annotations

import datetime as dt
import itertools

from dataplatform.producers.simulators.bookings import BookingService
from dataplatform.producers.simulators.court_list import courts, languages, listing, next_listing
from dataplatform.producers.simulators.hearings import ListingService
from dataplatform.producers.simulators.scenarios import (INTERPRETER_SHORTAGE_HEARINGS, PETERBOROUGH_MAGISTRATES,
                                                         POLISH, Step, scenario_plan)
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import get_product
from tests.support.interpreter_counts import BOOKINGS, HEARINGS, expected_cover, short_of_interpreters


class RecordingPublisher:
    """Records each change as the SDK would publish it, after validating it against the product."""

    def __init__(self, product: str, sent: list[tuple[str, ChangeEvent]], positions: itertools.count) -> None:
        self.product, self.sent, self.positions = get_product(product), sent, positions

    def created(self, entity: dict) -> None:
        self._record("c", None, entity)

    def updated(self, before: dict, after: dict) -> None:
        self._record("u", before, after)

    def _record(self, op: str, before: dict | None, after: dict) -> None:
        self.product.validate_entity(after)
        self.sent.append((self.product.name, ChangeEvent(op, before, after, source_system="test",
                                                         position=next(self.positions))))


def _services(seed: int) -> tuple[ListingService, BookingService, list[tuple[str, ChangeEvent]]]:
    sent: list[tuple[str, ChangeEvent]] = []
    positions = itertools.count(1)
    return (ListingService(RecordingPublisher(HEARINGS, sent, positions), seed),  # type: ignore[arg-type]
            BookingService(RecordingPublisher(BOOKINGS, sent, positions), seed), sent)  # type: ignore[arg-type]


def test_the_scenario_leaves_polish_hearings_tomorrow_uncovered_then_covers_them() -> None:
    plan = scenario_plan("interpreter-shortage", seed=3)
    hearings, bookings, sent = _services(seed=3)
    steps = sorted([(s, hearings) for s in plan.hearings] + [(s, bookings) for s in plan.bookings],
                   key=lambda pair: pair[0].at)
    slot = (PETERBOROUGH_MAGISTRATES, dt.date.today() + dt.timedelta(days=1), POLISH)
    seen: dict[str, tuple[int, int]] = {}
    for step, service in steps:
        service.apply(step)
        seen[step.phase] = expected_cover(sent, dt.date.today()).get(slot, (0, 0))
    assert seen == {"warm-up": (0, 0), "raise": (INTERPRETER_SHORTAGE_HEARINGS, 0),
                    "hold": (INTERPRETER_SHORTAGE_HEARINGS, 0),
                    "clear": (INTERPRETER_SHORTAGE_HEARINGS, INTERPRETER_SHORTAGE_HEARINGS)}
    assert slot not in short_of_interpreters(expected_cover(sent, dt.date.today()))
    # ordinary activity never touched the court the scenario keeps to itself
    assert sum(e.entity["court_code"] == PETERBOROUGH_MAGISTRATES for _, e in sent) == 2 * INTERPRETER_SHORTAGE_HEARINGS


def test_ordinary_activity_mostly_books_an_interpreter_for_each_hearing_that_needs_one() -> None:
    hearings, bookings, sent = _services(seed=1)
    for _ in range(200):
        hearings.apply(Step(0, "random"))
        bookings.apply(Step(0, "random"))
    assert {p for p, _ in sent} == {HEARINGS, BOOKINGS}
    statuses = {e.after["status"] for p, e in sent if p == HEARINGS}
    assert statuses == {"listed", "adjourned", "heard", "vacated"}
    assert {e.after["status"] for p, e in sent if p == BOOKINGS} >= {"booked", "cancelled"}
    cover = expected_cover(sent, dt.date.today())
    needed = sum(h for h, _ in cover.values())
    uncovered = sum(h - b for h, b in short_of_interpreters(cover).values())
    assert needed > 0 and uncovered < needed / 2  # shortfalls happen, but most hearings are covered
    # every hearing that needs an interpreter names a known language, and only those do
    for product, event in sent:
        if product == HEARINGS:
            assert (event.after["language"] in languages()) == event.after["interpreter_required"]
        assert event.after["court_code"] in courts()


def test_the_same_seed_makes_the_same_changes() -> None:
    def run(seed: int) -> list[tuple[str, str, dict]]:
        hearings, bookings, sent = _services(seed)
        for _ in range(50):
            hearings.apply(Step(0, "random"))
            bookings.apply(Step(0, "random"))
        return [(p, e.op, {k: v for k, v in e.after.items() if k != "updated_at"}) for p, e in sent]

    assert run(5) == run(5) and run(5) != run(6)


def test_both_services_read_the_same_court_list() -> None:
    assert listing(9, 12) == listing(9, 12)
    entry = next_listing(9, 0, exclude_court="PBOMC", interpreter_only=True)
    assert entry.language in languages() and entry.court_code != "PBOMC"
    assert all(listing(9, n).language is None or listing(9, n).court_code == "PBOMC" for n in range(1, entry.number))
