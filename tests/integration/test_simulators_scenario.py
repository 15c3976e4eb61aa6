"""The shortage-north-west scenario, both simulators at once (as `dataplatform run` starts
them), on a shrunk timeline: the published data shows the shortage, then its end."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

from dataplatform.config import Settings
from dataplatform.product_io.serialization import ProductSerde, registry_client
from dataplatform.producers.simulators import run_housing_simulator, run_releases_simulator, scenario_plan
from dataplatform.producers.simulators.scenarios import NORTH_WEST, SHORTAGE_HORIZON_DAYS
from dataplatform.products.product import get_product
from tests.support.kafka import consume, create_topic, unique_name


def nw_available(units: list[dict]) -> int:
    latest = {u["unit_id"]: u for u in units}
    return sum(u["region_code"] == NORTH_WEST and u["status"] == "available" for u in latest.values())


def nw_due_soon(cases: list[dict]) -> int:
    latest = {c["case_id"]: c for c in cases}
    horizon = dt.date.today() + dt.timedelta(days=SHORTAGE_HORIZON_DAYS)
    return sum(c["region_code"] == NORTH_WEST and c["status"] == "scheduled" and c["expected_release_date"] <= horizon
               for c in latest.values())


def test_shortage_is_raised_then_cleared(bootstrap: str, registry_url: str, tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap_servers=bootstrap, schema_registry_url=registry_url,
                        dataplatform_home=tmp_path)
    housing_topic = create_topic(bootstrap, unique_name("scenario-housing"))
    releases_topic = create_topic(bootstrap, unique_name("scenario-releases"))
    plan = scenario_plan("shortage-north-west", seed=5)
    reports = {}
    kwargs = {"seed": 5, "scenario": "shortage-north-west", "time_scale": 0.03}
    threads = [
        threading.Thread(target=lambda: reports.setdefault("housing", run_housing_simulator(
            settings, topic=housing_topic, **kwargs))),
        threading.Thread(target=lambda: reports.setdefault("releases", run_releases_simulator(
            settings, topic=releases_topic, **kwargs))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert reports["housing"].published == len(plan.housing)
    assert reports["releases"].published == len(plan.releases)

    def values(product: str, topic: str, expected: int) -> list[dict]:
        serde = ProductSerde(get_product(product), registry_client(registry_url))
        return [serde.deserialize_value(m.value(), topic)["after"] for m in consume(bootstrap, topic, expected)]

    units = values("social_housing_availability", housing_topic, len(plan.housing))
    cases = values("prison_releases_housing_need", releases_topic, len(plan.releases))
    raised_h = sum(1 for s in plan.housing if s.phase in ("warm-up", "raise"))
    raised_r = sum(1 for s in plan.releases if s.phase in ("warm-up", "raise"))

    # end of the raise phase: many North West releases due within 28 days, no units to offer
    assert nw_available(units[:raised_h]) == 0
    assert nw_due_soon(cases[:raised_r]) >= 40
    # end of the scenario: supply exceeds what is due
    assert nw_available(units) > nw_due_soon(cases) + 100
