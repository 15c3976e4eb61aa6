"""A simulated court listing service: hearings published directly with the SDK.

Hearings are listed at a court for a date (some needing an interpreter in a language),
relisted to another date, adjourned, heard or vacated. The service keeps its hearings in
memory and publishes each change with :class:`~dataplatform.producers.publisher.Publisher`.
New listings come from the shared seeded court list
(:mod:`~dataplatform.producers.simulators.court_list`), which the bookings simulator books
interpreters against; the rest of its choices come from its own seeded RNG.
"""

from __future__ import annotations

import datetime as dt
import random

from dataplatform.config import Settings
from dataplatform.producers.publisher import Publisher
from dataplatform.producers.simulators.court_list import DAYS_AHEAD, next_listing
from dataplatform.producers.simulators.publishing import now, run_publishing_simulator
from dataplatform.producers.simulators.scenarios import SimulationReport, Step

PRODUCT = "court_hearings_interpreter_need"
SOURCE_SYSTEM = "listing-service"
HEARING_TYPES = ("first_appearance", "first_appearance", "plea", "trial", "sentence", "mention")


class ListingService:
    """The business side: applies steps to its hearings and publishes each change."""

    def __init__(self, publisher: Publisher, seed: int) -> None:
        self.publisher = publisher
        self.seed = seed
        self.rng = random.Random(f"hearings:{seed}")
        self.hearings: dict[str, dict] = {}
        self.listed_up_to = 0  # number of the last court-list entry listed
        self.published = 0

    def apply(self, step: Step) -> None:
        if step.action == "list_hearing":
            language = step.arg("language")
            self._list(str(step.arg("court")), int(step.arg("days_ahead")),  # type: ignore[arg-type]
                       None if language is None else str(language))
        else:
            self._random(step.arg("exclude_court"))

    def _list(self, court_code: str, days_ahead: int, language: str | None) -> None:
        number = len(self.hearings) + 1
        year = dt.date.today().year
        case_number = (f"T{year}{self.rng.randrange(10**4):04d}" if court_code.endswith("CC")
                       else f"{court_code[:3]}{year % 100:02d}{self.rng.randrange(10**6):06d}")
        hearing = {"hearing_id": f"HRG-{self.seed}-{number:06d}", "case_number": case_number,
                   "defendant_reference": f"D{self.rng.randrange(10**7):07d}", "court_code": court_code,
                   "hearing_date": dt.date.today() + dt.timedelta(days=days_ahead),
                   "hearing_type": self.rng.choice(HEARING_TYPES), "interpreter_required": language is not None,
                   "language": language, "status": "listed", "updated_at": now()}
        self.hearings[hearing["hearing_id"]] = hearing
        self.publisher.created(hearing)
        self.published += 1

    def _change(self, hearing: dict, **changes: object) -> None:
        after = {**hearing, **changes, "updated_at": now()}
        self.publisher.updated(hearing, after)
        self.hearings[hearing["hearing_id"]] = after
        self.published += 1

    def _random(self, exclude_court: object) -> None:
        listed = [h for h in self.hearings.values() if h["status"] == "listed" and h["court_code"] != exclude_court]
        roll = self.rng.random()
        if len(listed) < 5 or roll < 0.55:
            entry = next_listing(self.seed, self.listed_up_to, exclude_court=exclude_court)  # type: ignore[arg-type]
            self.listed_up_to = entry.number
            self._list(entry.court_code, entry.days_ahead, entry.language)
            return
        hearing = self.rng.choice(listed)
        if roll < 0.59:  # relisted: its interpreter booking stays on the old date
            self._change(hearing, hearing_date=dt.date.today() + dt.timedelta(days=self.rng.randint(0, DAYS_AHEAD)))
        elif roll < 0.7:
            self._change(hearing, status="adjourned")
        elif roll < 0.92:
            self._change(hearing, status="heard")
        else:
            self._change(hearing, status="vacated")


def run_hearings_simulator(settings: Settings | None = None, **options: object) -> SimulationReport:
    """Run the listing service (options as :func:`run_publishing_simulator`'s): every change is
    acknowledged before the next."""
    return run_publishing_simulator("hearings", PRODUCT, SOURCE_SYSTEM, ListingService, settings,
                                    **options)  # type: ignore[arg-type]
