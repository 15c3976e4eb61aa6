"""The court list both court simulators share: which hearings will be listed, where, when and
in which language, computed from the seed alone.

The listing service and the interpreter booking service are separate systems, as in a real
court: the booking service never reads the listing service. For their ordinary activity to
look like a working court (most hearings that need an interpreter get one booked), both
draw from the same seeded court list: listing ``n`` is a pure function of ``(seed, n)``,
so the hearings simulator lists it and the bookings simulator books an interpreter for it
without either seeing the other.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from dataplatform.products.reference import reference_lookup, reference_table

#: Hearing dates run this many days ahead: some inside the 7-day horizon, some beyond it.
DAYS_AHEAD = 14
#: Share of listings with a defendant or witness who needs an interpreter.
INTERPRETER_SHARE = 0.35


@dataclass(frozen=True)
class Court:
    court_code: str
    court_name: str
    region_code: str


@lru_cache(maxsize=1)
def courts() -> dict[str, Court]:
    """Crown and magistrates' courts by code (``schemas/reference/courts.csv``)."""
    return {row["court_code"]: Court(**row) for row in reference_table("courts")}


@lru_cache(maxsize=1)
def languages() -> dict[str, str]:
    """Interpreter languages: name by ISO 639-3 code (``schemas/reference/languages.csv``)."""
    return dict(reference_lookup("languages", "language_code", "language_name"))


@dataclass(frozen=True)
class Listing:
    """One hearing on the court list: ``days_ahead`` of the day it is listed."""

    number: int
    court_code: str
    days_ahead: int
    language: str | None  # None: no interpreter needed


def listing(seed: int, number: int) -> Listing:
    """Listing ``number`` of the court list of ``seed`` (the same for every caller)."""
    rng = random.Random(f"court-list:{seed}:{number}")
    court = rng.choice(sorted(courts()))
    days_ahead = rng.randint(0, DAYS_AHEAD)
    language = rng.choice(sorted(languages())) if rng.random() < INTERPRETER_SHARE else None
    return Listing(number, court, days_ahead, language)


def next_listing(seed: int, after: int, *, exclude_court: str | None = None,
                 interpreter_only: bool = False) -> Listing:
    """The first listing after number ``after``, skipping ``exclude_court``'s (a scenario keeps
    that court to itself) and, with ``interpreter_only``, those needing no interpreter."""
    number = after + 1
    while True:
        entry = listing(seed, number)
        if entry.court_code != exclude_court and (entry.language or not interpreter_only):
            return entry
        number += 1
