"""The interpreter-shortage scenario, the hearings and bookings simulators at once, on a
shrunk timeline against the real broker and registry: the published events, recomputed
independently, show Polish hearings at Peterborough Magistrates' Court tomorrow without
interpreters, then with one each."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

from dataplatform.config import Settings
from dataplatform.product_io.serialization import ProductSerde, registry_client
from dataplatform.producers.simulators import run_bookings_simulator, run_hearings_simulator, scenario_plan
from dataplatform.producers.simulators.scenarios import (INTERPRETER_SHORTAGE_HEARINGS, PETERBOROUGH_MAGISTRATES,
                                                         POLISH)
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import get_product
from tests.support.interpreter_counts import BOOKINGS, HEARINGS, expected_cover, short_of_interpreters
from tests.support.kafka import consume, create_topic, unique_name


def test_interpreter_shortage_is_raised_then_cleared(bootstrap: str, registry_url: str, tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap_servers=bootstrap, schema_registry_url=registry_url,
                        dataplatform_home=tmp_path)
    topics = {HEARINGS: create_topic(bootstrap, unique_name("scenario-hearings")),
              BOOKINGS: create_topic(bootstrap, unique_name("scenario-bookings"))}
    plan = scenario_plan("interpreter-shortage", seed=5)
    reports = {}
    kwargs = {"seed": 5, "scenario": "interpreter-shortage", "time_scale": 0.03}
    threads = [
        threading.Thread(target=lambda: reports.setdefault("hearings", run_hearings_simulator(
            settings, topic=topics[HEARINGS], **kwargs))),
        threading.Thread(target=lambda: reports.setdefault("bookings", run_bookings_simulator(
            settings, topic=topics[BOOKINGS], **kwargs))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert reports["hearings"].published == len(plan.hearings)
    assert reports["bookings"].published == len(plan.bookings)

    def events(product: str, expected: int) -> list[tuple[str, ChangeEvent]]:
        serde = ProductSerde(get_product(product), registry_client(registry_url))
        return [(product, ChangeEvent.from_record(serde.deserialize_value(m.value(), topics[product])))
                for m in consume(bootstrap, topics[product], expected)]

    hearings, bookings = events(HEARINGS, len(plan.hearings)), events(BOOKINGS, len(plan.bookings))
    # personal fields are filled in at the source (they are the derivation's to keep out)
    assert all(e.after["defendant_reference"] and e.after["case_number"] for _, e in hearings)
    slot = (PETERBOROUGH_MAGISTRATES, dt.date.today() + dt.timedelta(days=1), POLISH)
    until_hold_h = sum(1 for s in plan.hearings if s.phase != "clear")
    until_hold_b = sum(1 for s in plan.bookings if s.phase != "clear")

    # up to the end of the hold phase: 4 Polish hearings there tomorrow, no interpreter booked
    held = expected_cover(hearings[:until_hold_h] + bookings[:until_hold_b], dt.date.today())
    assert short_of_interpreters(held)[slot] == (INTERPRETER_SHORTAGE_HEARINGS, 0)
    # at the end: an interpreter for each
    final = expected_cover(hearings + bookings, dt.date.today())
    assert final[slot] == (INTERPRETER_SHORTAGE_HEARINGS, INTERPRETER_SHORTAGE_HEARINGS)
