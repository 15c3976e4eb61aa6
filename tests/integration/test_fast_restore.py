"""A worker with no local store is bulk-restored from its changelogs (issue 30), and what the
bulk restore leaves is exactly what Faust's own restore leaves, even when it is killed part way.

One processor run writes state with creates, moves between areas and deletes (tombstones in
the entity and group changelogs). Then two new workers, each on an empty folder, restore
the same changelogs: one with the bulk restore off (Faust's recovery applies every record),
one with it on for any lag and small write batches, killed after its first write batch and
started again. Their stores are compared value by value, and each with its changelog.
"""

from __future__ import annotations

import re
from pathlib import Path

from dataplatform.stream_processors.config import ProcessorConfig
from dataplatform.crash_points import PLAN_ENV
from dataplatform.stream_processors.deployment.pool import WorkerPool, start_workers
from tests.support.crash_plans import write_plan
from tests.support.entities import HOUSING, MANCHESTER, NEWCASTLE, NORTH_EAST, NORTH_WEST, RELEASES, housing_unit, release_case
from tests.support.local_store import assert_stores_hold_their_changelogs, local_stores
from tests.support.processor_harness import TODAY, caught_up, processor_config
from tests.support.sending import ChangeSender
from tests.support.waiting import wait_until

RECOVERED = re.compile(r"Recovery complete")


def restored_store(config: ProcessorConfig, datadir: Path, **options: object) -> WorkerPool:
    """Start one worker on an empty ``datadir`` and stop it once its tables are restored
    (the supervisor restarts it if a crash plan kills it first)."""
    pool = start_workers(1, config=config.with_(datadir=str(datadir), **options))
    try:
        wait_until(lambda: (pool.supervise() or True) and RECOVERED.search(Path(pool.logs[0]).read_text()),
                   timeout=120, interval=0.2, message=f"the worker in {datadir} restored its tables")
    finally:
        pool.stop()
    return pool


def test_the_bulk_restore_leaves_what_fausts_restore_leaves_even_when_killed(bootstrap, registry_url, tmp_path,
                                                                           monkeypatch):
    config = processor_config(bootstrap, registry_url, tmp_path, "bulkrestore", tick_seconds=3600, batch_size=40,
                              store="rocksdb://")
    pool = start_workers(1, config=config)
    config = pool.config
    pub = ChangeSender(bootstrap, registry_url, HOUSING, RELEASES,
                       topics={p: config.topic(p) for p in (HOUSING, RELEASES)})
    areas = [(MANCHESTER, NORTH_WEST), (NEWCASTLE, NORTH_EAST)]
    units = {}
    for i in range(300):
        la, region = areas[i % 2]
        if i % 3:
            units[i] = pub.change("c", None, housing_unit(f"HU-{i}", la, region), product=HOUSING).after
        else:
            pub.change("c", None, release_case(f"C-{i}", la, region, release_date=TODAY), product=RELEASES)
    for i, unit in list(units.items())[:120]:   # moves to the other area, then deletes with tombstones
        la, region = areas[(i + 1) % 2]
        if i % 2:
            units[i] = pub.change("u", unit, {**unit, "local_authority_code": la, "region_code": region},
                                  product=HOUSING).after
        else:
            pub.change("d", unit, None, product=HOUSING)
            pub.tombstone(unit["unit_id"], product=HOUSING)
    pub.flush()
    try:
        wait_until(lambda: caught_up(bootstrap, config), timeout=180, interval=0.2, message="every event processed")
    finally:
        pool.stop()

    fausts = restored_store(config, tmp_path / "faust-restore", bulk_restore_from=10**12)
    monkeypatch.setenv(PLAN_ENV, str(write_plan(tmp_path / "plan", [("bulk-restore", 1)])))
    bulk = restored_store(config, tmp_path / "bulk-restore", bulk_restore_from=0, bulk_restore_batch=50)

    assert "bulk restore of" not in fausts.log_tail(400)
    assert "crash test: killing this worker at bulk-restore" in bulk.log_tail(400)
    assert re.search(r"bulk restore of .*: \d+ records", bulk.log_tail(400)), "the restarted worker did not finish"
    by_faust, by_bulk = local_stores(tmp_path / "faust-restore"), local_stores(tmp_path / "bulk-restore")
    assert sum(map(len, by_faust.values())) >= 300
    assert by_bulk == by_faust
    assert_stores_hold_their_changelogs(bootstrap, config, tmp_path / "bulk-restore")
