"""The supply/demand processor on the real broker and registry, run as worker processes."""

from __future__ import annotations

import datetime as dt
import time

from dataplatform.products.envelope import ChangeEvent
from dataplatform.product_io import wire
from tests.support.entities import HOUSING, RELEASES
from dataplatform.stream_processors.deployment.pool import start_workers
from tests.support.entities import (
    LEEDS, MANCHESTER, NEWCASTLE, NORTH_EAST, NORTH_WEST, YORKSHIRE, housing_unit, release_case,
)
from tests.support.kafka import stable_assignment
from tests.support.processor_harness import (
    TODAY, OutputReader, caught_up, expected_figures, latest_heartbeats, processor_config,
)
from tests.support.published_figures import assert_warnings_carry_published_figures
from tests.support.sending import ChangeSender
from tests.support.waiting import wait_until

REGION_OF = {MANCHESTER: NORTH_WEST, LEEDS: YORKSHIRE, NEWCASTLE: NORTH_EAST}
SOON = TODAY + dt.timedelta(days=7)


def _epoch_ms(value) -> int:
    return int(value.timestamp() * 1000) if isinstance(value, dt.datetime) else int(value)


def units(publisher: ChangeSender, la: str, ids: list[str], position: int = 1) -> None:
    for uid in ids:
        publisher.send(HOUSING, ChangeEvent("c", None, housing_unit(uid, la, REGION_OF[la], available_from=TODAY),
                                            "housing-service", position))


def releases(publisher: ChangeSender, la: str, ids: list[str], position: int = 1) -> None:
    for cid in ids:
        publisher.send(RELEASES, ChangeEvent("c", None, release_case(cid, la, REGION_OF[la], release_date=SOON,
                                                                     person_ref=f"SECRET-{cid}"),
                                             "releases-service", position))


def test_shortage_warning_lifecycle_duplicates_garbage_and_restart(bootstrap, registry_url, tmp_path):
    config = processor_config(bootstrap, registry_url, tmp_path, "proc-life", tick_seconds=2, heartbeat_seconds=1)
    pool = start_workers(1, config=config)
    config = pool.config
    reader = OutputReader(bootstrap, registry_url, config)
    pub = ChangeSender(bootstrap, registry_url, HOUSING, RELEASES,
                       topics={p: config.topic(p) for p in (HOUSING, RELEASES)})
    try:
        # Leeds: homes first, then one person: always covered, never warned about
        units(pub, LEEDS, ["lu1", "lu2", "lu3"])
        pub.flush()
        wait_until(lambda: reader.drain().latest_figures().get(YORKSHIRE) == (3, 0), timeout=90,
                   message=f"Leeds homes processed; log:\n{pool.log_tail()}")
        # Manchester: 3 people released within a week, 1 home -> RED. Newcastle: RED.
        started = time.monotonic()
        releases(pub, MANCHESTER, ["m1", "m2", "m3"])
        pub.flush()
        wait_until(lambda: (MANCHESTER, "RED", "raised") in reader.drain().transitions(), timeout=90,
                   message=f"RED for Manchester; log:\n{pool.log_tail()}")
        assert time.monotonic() - started < 60
        units(pub, MANCHESTER, ["mu1"])                              # 1 home for 3 people: still RED
        releases(pub, LEEDS, ["l1"])
        pub.raw(b"lu-garbage", wire.header(1) + b"not avro at all", HOUSING)
        units(pub, LEEDS, ["lu4"])                                   # after the garbage: still processed
        releases(pub, NEWCASTLE, ["n1", "n2"])
        pub.flush()
        wait_until(lambda: caught_up(bootstrap, config) and reader.drain().latest_figures().get(LEEDS) == (4, 1),
                   timeout=60, message="all events processed")
        reader.drain()
        assert reader.transitions(MANCHESTER) == [(MANCHESTER, "RED", "raised")]
        assert reader.transitions(LEEDS) == [] and reader.transitions(YORKSHIRE) == []
        assert (NORTH_WEST, "RED", "raised") in reader.transitions()
        red = next(w["after"] for w in reader.warnings if w["after"]["area_code"] == MANCHESTER)
        # raised on the figures published after the releases stage 2 first saw (judged once per
        # repartition message, on the figures it publishes), then only updated counts
        assert (red["supply"], red["horizon_days"], red["rule_id"]) == (0, 28, "shortfall") and red["demand"] in (1, 2, 3)
        assert red["message"] == f"RED raised  Manchester  demand {red['demand']} > supply 0 (next 28 days)"
        assert assert_warnings_carry_published_figures(reader.derived, reader.warnings, ("area_code",),
                                                       ("supply", "demand")) >= 2
        assert _epoch_ms(red["evidence_at"]) in {e.ts_ms for p, e in pub.sent if p == RELEASES
                                                  and e.entity["local_authority_code"] == MANCHESTER}

        # the garbage went to the dead-letter topic with where it came from and why
        (dead,) = reader.dead_letters
        headers = dict(dead.headers())
        assert headers["dlq.source.topic"].decode() == config.topic(HOUSING)
        assert int(headers["dlq.source.offset"]) >= 0 and int(headers["dlq.source.partition"]) in range(4)
        assert headers["dlq.error.class"] and headers["dlq.error.message"]    # e.g. SerializationError
        assert dead.key() == b"lu-garbage"

        # derived figures equal an independent recomputation from the raw events
        assert reader.latest_figures() == expected_figures(pub.sent)

        # the worker's heartbeat says it is alive and how far it got, per derived product
        def beating() -> bool:
            beats = latest_heartbeats(bootstrap, config.app_id)
            return (set(beats) == {"area_supply_demand", "housing_shortfall_warnings"}
                    and all(b.events_in >= len(pub.sent) and b.last_evaluation_ms and b.last_input_event_ms
                            for b in beats.values()))
        wait_until(beating, timeout=30, message="heartbeats with the worker's progress")

        # no personal data anywhere in what the processor wrote
        everything = repr(reader.warnings) + repr(reader.derived) + repr([d.headers() for d in reader.dead_letters])
        assert "SECRET" not in everything and "person_ref" not in everything

        # duplicates: the same events again change nothing
        before = (len(reader.warnings), len(reader.derived))
        for product, event in list(pub.sent):
            pub.send(product, event)
        pub.flush()
        wait_until(lambda: caught_up(bootstrap, config), timeout=60, message="duplicates processed")
        assert (len(reader.drain().warnings), len(reader.derived)) == before

        # housing added in Manchester: 4 homes for 3 people clears the warning
        units(pub, MANCHESTER, ["mu2", "mu3", "mu4"])
        pub.flush()
        wait_until(lambda: (MANCHESTER, "NONE", "cleared") in reader.drain().transitions(MANCHESTER), timeout=60,
                   message="Manchester cleared")
        assert reader.transitions(MANCHESTER) == [(MANCHESTER, "RED", "raised"), (MANCHESTER, "NONE", "cleared")]
        cleared = [w for w in reader.warnings if w["after"]["area_code"] == MANCHESTER][-1]
        assert cleared["op"] == "u" and cleared["before"]["severity"] == "RED" and cleared["after"]["raised_at"] is None

        # restart: tables come back from their changelogs, nothing is raised again
        assert pool.stop() == [0]
        warnings_before_restart = reader.drain().transitions()
        pool = start_workers(1, config=config, first_index=1)
        releases(pub, NEWCASTLE, ["n3"])                     # Newcastle stays RED: 3 people, no homes
        pub.flush()
        wait_until(lambda: reader.drain().latest_figures().get(NEWCASTLE) == (0, 3), timeout=90,
                   message=f"restarted worker processing; log:\n{pool.log_tail()}")
        wait_until(lambda: caught_up(bootstrap, config), timeout=60, message="restarted worker caught up")
        newcastle = [e for e in reader.derived if e["after"]["area_code"] == NEWCASTLE][-1]
        assert newcastle["op"] == "u" and newcastle["before"]["demand"] == 2     # published state restored
        assert reader.drain().transitions() == warnings_before_restart           # no re-raise
        assert reader.latest_figures() == expected_figures(pub.sent)
    finally:
        pool.stop()
        reader.close()


def test_two_workers_give_the_same_warnings_as_one(bootstrap, registry_url, tmp_path):
    one = processor_config(bootstrap, registry_url, tmp_path, "proc-one", tick_seconds=3600)
    two = one.with_(app_id=one.app_id + "-two", datadir=one.datadir + "-two", topic_overrides={
        "area_supply_demand": one.topic("area_supply_demand") + "-two",
        "housing_shortfall_warnings": one.topic("housing_shortfall_warnings") + "-two"})
    single = start_workers(1, config=one)
    pair = None
    readers: list[OutputReader] = []
    try:
        pair = start_workers(2, config=two)
        # both workers in the group before any event: a rebalance mid-run would be at-least-once
        # redelivery (duplicate transitions), which is not what this test compares
        wait_until(lambda: stable_assignment(bootstrap, pair.config.app_id, members=2), timeout=90,
                   message="both workers joined")
        readers = [OutputReader(bootstrap, registry_url, c) for c in (single.config, pair.config)]
        pub = ChangeSender(bootstrap, registry_url, HOUSING, RELEASES,
                           topics={p: one.topic(p) for p in (HOUSING, RELEASES)})

        def processed_by_both() -> None:
            pub.flush()
            expected = expected_figures(pub.sent)
            for r, c in zip(readers, (single.config, pair.config)):
                wait_until(lambda: caught_up(bootstrap, c) and r.drain().latest_figures() == expected, timeout=120,
                           message=f"{c.app_id} figures {r.latest_figures()} == {expected}")

        # homes first, then people: demand only grows against fixed supply
        for i, la in enumerate([MANCHESTER, LEEDS, NEWCASTLE]):
            units(pub, la, [f"{la}-u{j}" for j in range(2 * i)])
        processed_by_both()
        for i, la in enumerate([MANCHESTER, LEEDS, NEWCASTLE]):
            releases(pub, la, [f"{la}-c{j}" for j in range(3 + i)])
        processed_by_both()
        # a move between areas and a delete (both areas stay RED)
        original = next(e for p, e in pub.sent if p == RELEASES and e.after["case_id"] == f"{LEEDS}-c0")
        moved = release_case(f"{LEEDS}-c0", NEWCASTLE, NORTH_EAST, release_date=SOON)
        pub.send(RELEASES, ChangeEvent("u", original.after, moved, "releases-service", 2))
        pub.send(HOUSING, ChangeEvent("d", housing_unit(f"{NEWCASTLE}-u0", NEWCASTLE, NORTH_EAST),
                                      None, "housing-service", 2))
        processed_by_both()
        # the rules are judged once per repartition message, on the figures it publishes, and
        # one worker and two cut the stream into messages differently (AMBER raised then RED
        # escalated, or RED raised at once): the level each area ends at is the same, and every
        # warning of each carries figures that its own figures product published
        one_levels, two_levels = ({area: severity for area, severity, _ in r.drain().transitions()} for r in readers)
        assert one_levels == two_levels
        assert one_levels[MANCHESTER] == one_levels[LEEDS] == one_levels[NEWCASTLE] == "RED"
        for r in readers:
            assert assert_warnings_carry_published_figures(r.derived, r.warnings, ("area_code",),
                                                           ("supply", "demand")) >= 3
        # both workers of the pair really shared the partitions (the group's current assignment)
        owned = stable_assignment(bootstrap, pair.config.app_id, members=2)
        shares = [{p for topic, p in member if topic == two.topic(HOUSING)} for member in owned or [set(), set()]]
        assert shares[0] and shares[1] and not shares[0] & shares[1] and shares[0] | shares[1] == {0, 1, 2, 3}
    finally:
        single.stop()
        if pair is not None:
            pair.stop()
        for r in readers:
            r.close()
