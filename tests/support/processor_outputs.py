"""The supply/demand processor's two output topics read back as a subscriber reads them, and
the check every run of it must pass whatever happened on the way (kills, broker faults):
each key's events once, in order, in one unbroken chain."""

from __future__ import annotations

from collections import defaultdict

from dataplatform.products.product import get_product
from tests.support.product_topics import TopicReader


def read_outputs(bootstrap: str, registry_url: str, config) -> dict[str, dict[str, list[dict]]]:
    """Both output topics, every message, as a subscriber reads them: per key, in order.

    Checks on the way that an event id never comes with two contents (key and bytes), and
    keeps the first of exact repeats, as a subscriber dropping them would.
    """
    topics = {config.topic("area_supply_demand"): "figures", config.topic("housing_shortfall_warnings"): "warnings"}
    seen: dict[tuple[str, str], tuple[bytes, bytes]] = {}
    kept: set[tuple[str, str]] = set()
    out: dict[str, dict[str, list[dict]]] = {"figures": defaultdict(list), "warnings": defaultdict(list)}
    products = {t: get_product(p) for t, p in zip(topics, ("area_supply_demand", "housing_shortfall_warnings"))}
    with TopicReader(bootstrap, registry_url, products) as reader:
        for record in reader.read_to_end():
            event_id, msg = record.event_id, record.message
            first = seen.setdefault((record.topic, event_id), (msg.key(), msg.value()))
            assert first == (msg.key(), msg.value()), f"event {event_id} sent with two contents"
            if (record.topic, event_id) not in kept:   # an exact repeat is dropped
                kept.add((record.topic, event_id))
                out[topics[record.topic]][record.key].append(record.value)
    return out


def check_each_event_once_and_in_order(outputs: dict[str, dict[str, list[dict]]]) -> None:
    """Per key: positions 1, 2, 3, ... with no gap or repeat; the first a create, each
    next event's ``before`` the previous one's ``after``."""
    for kind, per_key in outputs.items():
        for key, events in per_key.items():
            assert [e["source"]["position"] for e in events] == list(range(1, len(events) + 1)), f"{kind} {key}"
            assert events[0]["op"] == "c" and events[0]["before"] is None
            for previous, event in zip(events, events[1:]):
                assert event["op"] == "u" and event["before"] == previous["after"], f"chain break in {kind} {key}"
