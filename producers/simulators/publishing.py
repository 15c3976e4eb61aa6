"""Running a simulated service that publishes each change directly with the SDK.

The releases, hearings and bookings simulators differ only in their business rules (a
service object with ``apply(step)`` and a ``published`` count); this runs any of them: the
scenario's steps for that service or ordinary activity, one
:class:`~dataplatform.producers.publisher.Publisher` acknowledging every change before the next.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from dataplatform.config import Settings, get_settings
from dataplatform.producers.publisher import Publisher
from dataplatform.producers.simulators.scenarios import (DEFAULT_RATE, Progress, SimulationReport, Step, random_steps,
                                                         run_steps, scenario_plan)
from dataplatform.products.product import DataProduct, get_product


def now() -> dt.datetime:
    """The current time as ``timestamp-millis`` holds it (whole milliseconds, UTC)."""
    current = dt.datetime.now(dt.UTC)
    return current.replace(microsecond=current.microsecond // 1000 * 1000)


class PublishingService(Protocol):
    published: int

    def apply(self, step: Step) -> None: ...


def run_publishing_simulator(service_name: str, product_name: str, source_system: str,
                             make_service: Callable[[Publisher, int], PublishingService],
                             settings: Settings | None = None, *, seed: int = 1, rate: float = DEFAULT_RATE,
                             count: int | None = None, duration: float | None = None, scenario: str | None = None,
                             stop_event: threading.Event | None = None, progress: Progress | None = None,
                             topic: str | None = None, time_scale: float = 1.0,
                             product: DataProduct | None = None,
                             publisher: AbstractContextManager | None = None) -> SimulationReport:
    """Run ``make_service(publisher, seed)``: changes at ``rate`` per second until ``count``
    /``duration``/the scenario's end/``stop_event``; every change is acknowledged before the next.
    ``publisher``: another way out of the service than the SDK (entered as the SDK's would be)."""
    settings = settings or get_settings()
    if scenario:
        plan = scenario_plan(scenario, seed=seed, rate=rate, time_scale=time_scale)
        planned: tuple[Step, ...] = getattr(plan, service_name)
        steps, total = iter(planned), len(planned)
    else:
        steps, total = random_steps(rate), None
    started = time.monotonic()
    publisher = publisher or Publisher(product or get_product(product_name), source_system=source_system,
                                       settings=settings, topic=topic)
    with publisher as out:
        service = make_service(out, seed)
        changes = run_steps(steps, service.apply, count=count, duration=duration, stop_event=stop_event,
                            progress=progress, total=total)
    return SimulationReport(service_name, changes, service.published, time.monotonic() - started)
