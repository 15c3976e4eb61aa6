"""A simulated release-planning service: release cases published directly with the SDK.

Cases are scheduled (a person due to leave a prison, going to a local authority, with a
housing need), rescheduled (the expected release date moves), released, housed, or
cancelled. The service keeps its cases in memory and publishes each change synchronously
with :class:`~dataplatform.producers.publisher.Publisher` (no outbox: the contrast with the housing
simulator), or, as ``dataplatform run`` plays it, as HMPPS domain events on SNS that the
product's bridge turns into change events (:mod:`.domain_events`). The RNG is seeded, so the same seed gives the same changes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random

from dataplatform.config import Settings, get_settings
from dataplatform.producers.publisher import Publisher
from dataplatform.producers.simulators.domain_events import CaseDetailApi, DomainEventPublisher
from dataplatform.producers.simulators.publishing import now, run_publishing_simulator
from dataplatform.producers.simulators.scenarios import SimulationReport, Step
from dataplatform.products.reference import local_authorities, prisons

PRODUCT = "prison_releases_housing_need"
SOURCE_SYSTEM = "releases-service"
NEEDS = ("general", "general", "general", "accessible", "supported", "family")


class ReleasesService:
    """The business side: applies steps to its cases and publishes each change."""

    def __init__(self, publisher: Publisher | DomainEventPublisher, seed: int) -> None:
        self.publisher = publisher
        self.seed = seed
        self.rng = random.Random(f"releases:{seed}")
        self.cases: dict[str, dict] = {}
        self.areas = sorted(local_authorities())
        self.prisons = sorted(prisons().values(), key=lambda p: p.prison_code)
        self.published = 0

    def apply(self, step: Step) -> None:
        if step.action == "schedule":
            self._schedule(str(step.arg("area")), int(step.arg("days_ahead", 14)))  # type: ignore[arg-type]
        elif step.action == "resolve":
            self._resolve(str(step.arg("region")))
        else:
            self._random(step.arg("exclude_region"))

    def _open(self, status: tuple[str, ...], region: object = None, exclude_region: object = None) -> list[dict]:
        return [c for c in self.cases.values() if c["status"] in status
                and (region is None or c["region_code"] == region)
                and (exclude_region is None or c["region_code"] != exclude_region)]

    def _schedule(self, area_code: str, days_ahead: int) -> None:
        region = local_authorities()[area_code].region_code
        nearby = [p for p in self.prisons if p.region_code == region] or self.prisons
        case = {"case_id": f"RC-{self.seed}-{len(self.cases) + 1:06d}",
                "person_ref": f"P{self.rng.randrange(10**7):07d}",
                "prison_code": self.rng.choice(nearby).prison_code,
                "expected_release_date": dt.date.today() + dt.timedelta(days=days_ahead),
                "local_authority_code": area_code, "region_code": region,
                "housing_need": self.rng.choice(NEEDS), "status": "scheduled", "updated_at": now()}
        self.cases[case["case_id"]] = case
        self.publisher.created(case)
        self.published += 1

    def _change(self, case: dict, **changes: object) -> None:
        after = {**case, **changes, "updated_at": now()}
        self.publisher.updated(case, after)
        self.cases[case["case_id"]] = after
        self.published += 1

    def _resolve(self, region: str) -> None:
        """Move a case in ``region`` on: released people get housed, scheduled ones leave."""
        released = self._open(("released",), region=region)
        if released:
            self._change(released[0], status="housed")
            return
        scheduled = self._open(("scheduled",), region=region)
        if scheduled:
            self._change(scheduled[0], status="released")
            return
        self._random(None)

    def _random(self, exclude_region: object) -> None:
        scheduled = self._open(("scheduled",), exclude_region=exclude_region)
        released = self._open(("released",), exclude_region=exclude_region)
        roll = self.rng.random()
        if len(scheduled) < 5 or roll < 0.4:
            areas = [a for a in self.areas if local_authorities()[a].region_code != exclude_region]
            self._schedule(self.rng.choice(areas), self.rng.randint(1, 90))
        elif roll < 0.55:
            case = self.rng.choice(scheduled)
            moved = case["expected_release_date"] + dt.timedelta(days=self.rng.choice((-7, -3, 5, 14, 30)))
            self._change(case, expected_release_date=max(moved, dt.date.today()))
        elif roll < 0.75:
            self._change(self.rng.choice(scheduled), status="released")
        elif roll < 0.9 and released:
            self._change(self.rng.choice(released), status="housed")
        else:
            self._change(self.rng.choice(scheduled + released), status="cancelled")


def run_releases_simulator(settings: Settings | None = None, *, domain_events_topic: str | None = None,
                           detail_api: CaseDetailApi | None = None, **options: object) -> SimulationReport:
    """Run the releases service (options as :func:`run_publishing_simulator`'s): every change is
    acknowledged before the next. With ``domain_events_topic`` (an SNS topic ARN) the service
    publishes HMPPS domain events there instead of using the SDK, for the product's bridge; their
    detail is served by ``detail_api`` (one of its own, for the run, when not given)."""
    if not domain_events_topic:
        return run_publishing_simulator("releases", PRODUCT, SOURCE_SYSTEM, ReleasesService, settings,
                                        **options)  # type: ignore[arg-type]
    with contextlib.ExitStack() as stack:
        api = detail_api or stack.enter_context(CaseDetailApi())
        options["publisher"] = DomainEventPublisher(settings or get_settings(), domain_events_topic, api)
        return run_publishing_simulator("releases", PRODUCT, SOURCE_SYSTEM, ReleasesService, settings,
                                        **options)  # type: ignore[arg-type]
