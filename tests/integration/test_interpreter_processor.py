"""The interpreter example, a derivation written only as YAML and Avro, on the real broker:
its figures equal an independent recomputation from the raw events (tests/support/
interpreter_counts.py), through duplicates, replays, deletes, moves between groups, a
worker restart and two workers; its warnings say RED exactly where hearings outnumber
bookings (once the spec's holds have passed), each on figures its figures product
published; nothing personal reaches its outputs."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import get_product
from dataplatform.stream_processors.deployment.pool import start_workers
from tests.support.interpreter_counts import BOOKINGS, HEARINGS, expected_cover, without_empty
from tests.support.processor_harness import caught_up, processor_config
from tests.support.product_topics import TopicReader
from tests.support.published_figures import assert_warnings_carry_published_figures
from tests.support.sending import ChangeSender
from tests.support.waiting import wait_until

FIGURES, WARNINGS = "interpreter_cover", "interpreter_shortage_warnings"
COURTS = ("PBOMC", "MANCC", "CARDC")
LANGUAGES = ("pol", "ron", "urd")
TODAY = dt.datetime.now(dt.timezone.utc).date()


def hearing(i: int, rnd: random.Random) -> dict:
    return {"hearing_id": f"H{i}", "case_number": f"T2026{i:04d}", "defendant_reference": f"SECRET-D{i}",
            "court_code": rnd.choice(COURTS), "hearing_date": TODAY + dt.timedelta(days=rnd.randint(-1, 9)),
            "hearing_type": "trial", "interpreter_required": rnd.random() < 0.9, "language": rnd.choice(LANGUAGES),
            "status": rnd.choice(("listed", "listed", "listed", "adjourned", "vacated")), "updated_at": 0}


def booking(i: int, rnd: random.Random) -> dict:
    return {"booking_id": f"B{i}", "interpreter_reference": f"SECRET-I{i}", "court_code": rnd.choice(COURTS),
            "hearing_date": TODAY + dt.timedelta(days=rnd.randint(-1, 9)), "language": rnd.choice(LANGUAGES),
            "status": rnd.choice(("booked", "booked", "cancelled")), "updated_at": 0}


def change_stream(seed: int, n: int = 240) -> list[tuple[str, ChangeEvent]]:
    """Hearings and bookings created, changed (relisted, moved court, cancelled), deleted;
    with duplicates of earlier events and old events replayed."""
    rnd = random.Random(seed)
    current: dict[tuple[str, int], tuple[int, dict]] = {}
    out: list[tuple[str, ChangeEvent]] = []
    for _ in range(n):
        roll = rnd.random()
        if out and roll < 0.08:
            out.append(rnd.choice(out))           # a duplicate or a replay of an older event
            continue
        product = rnd.choice((HEARINGS, BOOKINGS))
        i = rnd.randint(0, 40)
        position, before = current.get((product, i), (0, None))
        if before is not None and roll < 0.15:
            event = ChangeEvent("d", before, None, "test", position + 1)
            current.pop((product, i))
        else:
            after = (hearing if product == HEARINGS else booking)(i, rnd)
            event = ChangeEvent("u" if before else "c", before, after, "test", position + 1)
            current[(product, i)] = (position + 1, after)
        out.append((product, event))
    return out


GROUP = ("court_code", "hearing_date", "language")


def latest_outputs(reader: TopicReader, topics: dict[str, str], seen: dict) -> dict:
    """The latest record per group of each product; every event under ``(product, "events")``."""
    for record in reader.drain():
        after = record.value["after"]
        seen.setdefault(topics[record.topic], {})[tuple(after[f] for f in GROUP)] = after
        seen.setdefault((topics[record.topic], "events"), []).append(record.value)
    return seen


@pytest.mark.parametrize("workers", [1, 2])
def test_interpreter_cover_equals_an_independent_recomputation(bootstrap, registry_url, tmp_path, workers):
    config = processor_config(bootstrap, registry_url, tmp_path, f"interp-{workers}", derivation="interpreter_cover",
                              rules_path=None, tick_seconds=2, partitions=2)
    assert config.inputs == (HEARINGS, BOOKINGS) and config.outputs == (FIGURES, WARNINGS)
    pool = start_workers(workers, config=config)
    config = pool.config
    topics = {config.topic(FIGURES): FIGURES, config.topic(WARNINGS): WARNINGS}
    reader = TopicReader(bootstrap, registry_url, {t: get_product(p) for t, p in topics.items()})
    sender = ChangeSender(bootstrap, registry_url, HEARINGS, BOOKINGS,
                          topics={p: config.topic(p) for p in (HEARINGS, BOOKINGS)})
    stream, seen = change_stream(seed=workers), {}
    try:
        half = len(stream) // 2
        for product, event in stream[:half]:
            sender.send(product, event)
        sender.flush()
        if workers == 1:   # a worker killed mid-stream comes back from its changelogs
            wait_until(lambda: caught_up(bootstrap, config), timeout=120, message="first half processed")
            pool.processes[0].kill()
            pool.processes[0].wait(30)
            pool.start(0)
        for product, event in stream[half:]:
            sender.send(product, event)
        sender.flush()
        expected = without_empty(expected_cover(stream, TODAY))

        def figures() -> dict:
            latest = latest_outputs(reader, topics, seen).get(FIGURES, {})
            return without_empty({g: (f["hearings"], f["bookings"]) for g, f in latest.items()})

        wait_until(lambda: caught_up(bootstrap, config) and figures() == expected, timeout=180,
                   message=f"figures == {expected}")
        assert any(h > b for h, b in expected.values()) and any(h <= b for h, b in expected.values())
        levels = {group: "RED" if hearings > bookings else "NONE" for group, (hearings, bookings) in expected.items()}

        def warned() -> dict:
            latest = latest_outputs(reader, topics, seen).get(WARNINGS, {})
            return {group: latest[group]["severity"] if group in latest else "NONE" for group in levels}
        # the rule holds a level 10 s before raising it and 10 s before clearing it; ticks every 2 s
        wait_until(lambda: warned() == levels, timeout=60, interval=1, message=f"warning levels == {levels}")
        checked = assert_warnings_carry_published_figures(seen[(FIGURES, "events")], seen[(WARNINGS, "events")],
                                                          GROUP, ("hearings", "bookings"))
        assert checked >= len([level for level in levels.values() if level == "RED"])
        red = next(w for w in seen[WARNINGS].values() if w["severity"] == "RED")
        assert red["message"].startswith(f"RED raised  {red['court_name']} · ")
        assert f"hearings {red['hearings']} > bookings {red['bookings']} (next 7 days)" in red["message"]
        assert "SECRET" not in repr(seen)
    finally:
        reader.close()
        pool.stop()
