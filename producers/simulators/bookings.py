"""A simulated interpreter booking service: bookings published directly with the SDK.

Interpreters are booked to attend a court on a date for a language, cancelled, or marked
fulfilled once they have attended. The service never sees the listing service: it books
against the shared seeded court list
(:mod:`~dataplatform.producers.simulators.court_list`), ahead of the listing service, so
most hearings that need an interpreter find one booked; a cancellation leaves a hearing
short until it is relisted, adjourned or heard, as in a real court.
"""

from __future__ import annotations

import datetime as dt
import random

from dataplatform.config import Settings
from dataplatform.producers.publisher import Publisher
from dataplatform.producers.simulators.court_list import next_listing
from dataplatform.producers.simulators.publishing import now, run_publishing_simulator
from dataplatform.producers.simulators.scenarios import SimulationReport, Step

PRODUCT = "interpreter_bookings"
SOURCE_SYSTEM = "interpreter-booking-service"


class BookingService:
    """The business side: applies steps to its bookings and publishes each change."""

    def __init__(self, publisher: Publisher, seed: int) -> None:
        self.publisher = publisher
        self.seed = seed
        self.rng = random.Random(f"bookings:{seed}")
        self.bookings: dict[str, dict] = {}
        self.booked_up_to = 0  # number of the last court-list entry an interpreter was booked for
        self.published = 0

    def apply(self, step: Step) -> None:
        if step.action == "book":
            days_ahead = int(step.arg("days_ahead"))  # type: ignore[arg-type]
            self._book(str(step.arg("court")), days_ahead, str(step.arg("language")))
        else:
            self._random(step.arg("exclude_court"))

    def _book(self, court_code: str, days_ahead: int, language: str) -> None:
        booking = {"booking_id": f"IB-{self.seed}-{len(self.bookings) + 1:06d}",
                   "interpreter_reference": f"NRPSI-{self.rng.randrange(10**5):05d}", "court_code": court_code,
                   "hearing_date": dt.date.today() + dt.timedelta(days=days_ahead), "language": language,
                   "status": "booked", "updated_at": now()}
        self.bookings[booking["booking_id"]] = booking
        self.publisher.created(booking)
        self.published += 1

    def _change(self, booking: dict, status: str) -> None:
        after = {**booking, "status": status, "updated_at": now()}
        self.publisher.updated(booking, after)
        self.bookings[booking["booking_id"]] = after
        self.published += 1

    def _random(self, exclude_court: object) -> None:
        """Mostly book ahead on the court list (an interpreter is requested when the court asks
        for one, before the listing is final); sometimes the supplier cancels, leaving a hearing
        short; interpreters who attended today are marked fulfilled."""
        booked = [b for b in self.bookings.values() if b["status"] == "booked" and b["court_code"] != exclude_court]
        attended = [b for b in booked if b["hearing_date"] <= dt.date.today()]
        roll = self.rng.random()
        if len(booked) < 5 or roll < 0.85 or (roll >= 0.93 and not attended):
            entry = next_listing(self.seed, self.booked_up_to, exclude_court=exclude_court,  # type: ignore[arg-type]
                                 interpreter_only=True)
            self.booked_up_to = entry.number
            self._book(entry.court_code, entry.days_ahead, str(entry.language))
        elif roll < 0.93:
            self._change(self.rng.choice(booked), "cancelled")
        else:
            self._change(self.rng.choice(attended), "fulfilled")


def run_bookings_simulator(settings: Settings | None = None, **options: object) -> SimulationReport:
    """Run the interpreter booking service (options as :func:`run_publishing_simulator`'s):
    every change is acknowledged before the next."""
    return run_publishing_simulator("bookings", PRODUCT, SOURCE_SYSTEM, BookingService, settings,
                                    **options)  # type: ignore[arg-type]
