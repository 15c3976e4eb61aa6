"""The processor's Faust tables: changelog names, and recovery ending in a safe order
(stream_processors/tables.py)."""

from __future__ import annotations

import asyncio

from dataplatform.stream_processors.config import ProcessorConfig


def _stream_partitions_fetched_during_the_seek(tmp_path, recovery_class) -> tuple[set, set]:
    """End a recovery with ``recovery_class``'s ``on_recovery_completed`` on the processor
    app's real consumer (its broker calls stubbed): the stream partitions the consumer would
    fetch while it seeks them, and those it fetches once the recovery is over."""
    from faust.types import TP

    from dataplatform.stream_processors.topology import SupplyDemandProcessor

    config = ProcessorConfig(app_id="recovery-test", bootstrap="127.0.0.1:1", registry_url="http://127.0.0.1:1",
                             datadir=str(tmp_path))

    async def main():
        app = SupplyDemandProcessor(config).app
        recovery, consumer = app.tables.recovery, app.consumer
        streams = {TP(config.contributions_topic, 0), TP(config.topic("social_housing_availability"), 0)}
        changelog = TP(next(iter(app.tables.changelog_topics)), 0)
        fetched_during_seek: set = set()

        async def perform_seek():   # the real one asks the broker for the committed offsets
            fetched_during_seek.update(consumer._get_active_partitions() & streams)

        async def no_fetcher():
            return None

        consumer.assignment = lambda: streams | {changelog}
        consumer.perform_seek = perform_seek
        app._fetcher.maybe_start = no_fetcher
        consumer.pause_partitions(streams | {changelog})   # as Faust does when partitions are assigned
        await recovery_class.on_recovery_completed(recovery, app.consumer_generation_id)
        return fetched_during_seek, consumer._get_active_partitions() & streams

    return asyncio.run(main())


def test_stream_partitions_are_fetched_only_once_seeked_to_their_committed_offsets(tmp_path):
    from faust.tables.recovery import Recovery

    from dataplatform.stream_processors.tables import SeekFirstRecovery

    during, after = _stream_partitions_fetched_during_the_seek(tmp_path / "ours", SeekFirstRecovery)
    assert during == set() and len(after) == 2
    # Faust's own order resumes them first: records fetched before the seek move the read
    # offset on, and those fetched again after it are dropped as already read (lost)
    during, _ = _stream_partitions_fetched_during_the_seek(tmp_path / "faust", Recovery)
    assert len(during) == 2


def test_the_changelogs_created_up_front_are_the_ones_faust_writes_to(tmp_path):
    from dataplatform.stream_processors.config import TABLES
    from dataplatform.stream_processors.topology import SupplyDemandProcessor

    config = ProcessorConfig(app_id="names-test", bootstrap="127.0.0.1:1", registry_url="http://127.0.0.1:1",
                             datadir=str(tmp_path))

    async def changelogs() -> set[str]:
        return set(SupplyDemandProcessor(config).app.tables.changelog_topics)

    assert asyncio.run(changelogs()) == {config.changelog_topic(table) for table in TABLES}
