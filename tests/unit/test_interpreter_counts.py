"""The independent recomputation of interpreter cover that the end-to-end tests trust."""

from __future__ import annotations

import datetime as dt

from dataplatform.products.envelope import ChangeEvent
from tests.support.interpreter_counts import (BOOKINGS, HEARINGS, as_date, expected_cover, short_of_interpreters,
                                              without_empty)

TODAY = dt.date(2026, 12, 1)
TOMORROW = TODAY + dt.timedelta(days=1)


def hearing(hearing_id: str, when: dt.date = TOMORROW, language: str | None = "pol", status: str = "listed",
            court: str = "PBOMC", interpreter_required: bool = True) -> dict:
    return {"hearing_id": hearing_id, "case_number": f"CASE-{hearing_id}", "defendant_reference": f"D-{hearing_id}",
            "court_code": court, "hearing_date": when, "hearing_type": "trial",
            "interpreter_required": interpreter_required, "language": language, "status": status,
            "updated_at": 0}


def booking(booking_id: str, when: dt.date = TOMORROW, language: str = "pol", status: str = "booked",
            court: str = "PBOMC") -> dict:
    return {"booking_id": booking_id, "interpreter_reference": "NRPSI-00001", "court_code": court,
            "hearing_date": when, "language": language, "status": status, "updated_at": 0}


def created(product: str, entity: dict, position: int = 1) -> tuple[str, ChangeEvent]:
    return product, ChangeEvent("c", None, entity, source_system="test", position=position)


def updated(product: str, before: dict, after: dict, position: int) -> tuple[str, ChangeEvent]:
    return product, ChangeEvent("u", before, after, source_system="test", position=position)


def test_counts_listed_hearings_needing_an_interpreter_against_booked_interpreters() -> None:
    sent = [created(HEARINGS, hearing("H1")), created(HEARINGS, hearing("H2")),
            created(HEARINGS, hearing("H3", language=None, interpreter_required=False)),
            created(HEARINGS, hearing("H4", status="adjourned")), created(HEARINGS, hearing("H5", status="vacated")),
            created(BOOKINGS, booking("B1")), created(BOOKINGS, booking("B2", status="cancelled")),
            created(BOOKINGS, booking("B3", status="fulfilled")),
            created(HEARINGS, hearing("H6", language="ron", court="MANMC")),
            created(BOOKINGS, booking("B4", language="ron", court="MANMC"))]
    cover = expected_cover(sent, TODAY)
    assert cover == {("PBOMC", TOMORROW, "pol"): (2, 1), ("MANMC", TOMORROW, "ron"): (1, 1)}
    assert short_of_interpreters(cover) == {("PBOMC", TOMORROW, "pol"): (2, 1)}


def test_the_horizon_runs_from_today_to_seven_days_ahead_both_ends_included() -> None:
    days = {-1: "yesterday", 0: "today", 7: "last day", 8: "beyond"}
    sent = [created(HEARINGS, hearing(name, when=TODAY + dt.timedelta(days=d))) for d, name in days.items()]
    sent += [created(BOOKINGS, booking(f"B-{name}", when=TODAY + dt.timedelta(days=d))) for d, name in days.items()]
    cover = expected_cover(sent, TODAY)
    assert cover == {("PBOMC", TODAY, "pol"): (1, 1), ("PBOMC", TODAY + dt.timedelta(days=7), "pol"): (1, 1)}
    assert set(expected_cover(sent, TODAY, horizon_days=8)) == {
        ("PBOMC", TODAY + dt.timedelta(days=d), "pol") for d in (0, 7, 8)}


def test_the_latest_state_wins_whatever_the_order_and_duplicates_change_nothing() -> None:
    first = hearing("H1")
    moved = hearing("H1", when=TODAY + dt.timedelta(days=3))
    heard = {**moved, "status": "heard"}
    sent = [updated(HEARINGS, first, moved, position=2), created(HEARINGS, first, position=1)]
    assert expected_cover(sent, TODAY) == {("PBOMC", TODAY + dt.timedelta(days=3), "pol"): (1, 0)}
    sent += [updated(HEARINGS, moved, heard, position=3)] * 2 + [updated(HEARINGS, first, moved, position=2)]
    assert expected_cover(sent, TODAY) == {}


def test_a_deleted_entity_counts_nowhere() -> None:
    b = booking("B1")
    sent = [created(BOOKINGS, b), (BOOKINGS, ChangeEvent("d", b, None, source_system="test", position=2))]
    assert expected_cover(sent, TODAY) == {}


def test_hearing_dates_as_days_since_1970_are_read_as_dates() -> None:
    days = (TOMORROW - dt.date(1970, 1, 1)).days
    assert as_date(days) == TOMORROW and as_date(TOMORROW) == TOMORROW
    sent = [created(HEARINGS, {**hearing("H1"), "hearing_date": days})]
    assert expected_cover(sent, TODAY) == {("PBOMC", TOMORROW, "pol"): (1, 0)}


def test_without_empty_drops_groups_at_nothing_and_nothing() -> None:
    figures = {("PBOMC", TOMORROW, "pol"): (0, 0), ("MANMC", TOMORROW, "ron"): (0, 1)}
    assert without_empty(figures) == {("MANMC", TOMORROW, "ron"): (0, 1)}
