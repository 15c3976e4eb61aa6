"""Interpreter cover recomputed straight from the raw hearing and booking change events,
from the business definition alone (not from the derivation spec, not from processor code),
so that a test can hold the processor's figures against it.

The definition, as the listing office would put it, for one court, hearing date and language:

* **hearings**: hearings whose latest state is *listed*, that need an interpreter in that
  language, with a hearing date from today to ``horizon_days`` days ahead, both ends included;
* **bookings**: interpreter bookings whose latest state is *booked*, for that court, date and
  language, with a hearing date in the same window.

The latest state of a hearing or booking is its event with the highest source position (a
duplicate or replayed event changes nothing); after a delete it counts nowhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from dataplatform.products.envelope import ChangeEvent

HEARINGS = "court_hearings_interpreter_need"
BOOKINGS = "interpreter_bookings"
KEYS = {HEARINGS: "hearing_id", BOOKINGS: "booking_id"}
HORIZON_DAYS = 7
EPOCH = dt.date(1970, 1, 1)

Group = tuple[str, dt.date, str | None]  # court_code, hearing_date, language


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def as_date(value: dt.date | int) -> dt.date:
    """A hearing date as a date, whether decoded by fastavro (a date) or raw (days since 1970)."""
    return value if isinstance(value, dt.date) else EPOCH + dt.timedelta(days=value)


def latest_states(sent: Iterable[tuple[str, ChangeEvent]]) -> dict[tuple[str, str], ChangeEvent]:
    """The newest event of each hearing and booking, by source position."""
    latest: dict[tuple[str, str], ChangeEvent] = {}
    for product, event in sent:
        key = (product, event.entity[KEYS[product]])
        if key not in latest or event.position > latest[key].position:
            latest[key] = event
    return latest


def expected_cover(sent: Iterable[tuple[str, ChangeEvent]], today: dt.date | None = None,
                   horizon_days: int = HORIZON_DAYS) -> dict[Group, tuple[int, int]]:
    """(hearings, bookings) per (court, hearing date, language) with at least one of either.

    Groups at 0/0 are left out: a processor may well report a group that emptied as 0/0,
    so compare with :func:`without_empty` of its figures.
    """
    today = today or utc_today()
    last_day = today + dt.timedelta(days=horizon_days)
    cover: dict[Group, list[int]] = {}
    for (product, _), event in latest_states(sent).items():
        if event.op == "d":
            continue
        entity = event.after
        hearing_date = as_date(entity["hearing_date"])
        if not today <= hearing_date <= last_day:
            continue
        if product == HEARINGS:
            counted, side = entity["interpreter_required"] and entity["status"] == "listed", 0
        else:
            counted, side = entity["status"] == "booked", 1
        if counted:
            group = (entity["court_code"], hearing_date, entity["language"])
            cover.setdefault(group, [0, 0])[side] += 1
    return {group: (hearings, bookings) for group, (hearings, bookings) in cover.items()}


def without_empty(figures: dict[Group, tuple[int, int]]) -> dict[Group, tuple[int, int]]:
    """``figures`` without the groups at 0 hearings and 0 bookings."""
    return {group: counts for group, counts in figures.items() if counts != (0, 0)}


def short_of_interpreters(cover: dict[Group, tuple[int, int]]) -> dict[Group, tuple[int, int]]:
    """The groups with more hearings needing an interpreter than interpreters booked (RED)."""
    return {group: (hearings, bookings) for group, (hearings, bookings) in cover.items() if bookings < hearings}
