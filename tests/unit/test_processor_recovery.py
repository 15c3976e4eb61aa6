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

    from dataplatform.stream_processors.recovery import SeekFirstRecovery

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


def _active_while_the_app_handles_an_assignment(tmp_path, on_partitions_assigned) -> set:
    """The partitions the processor app's real consumer would fetch while the app handles a
    new assignment (its own handler stubbed: the real one pauses them, then recovers)."""
    from faust.types import TP

    from dataplatform.stream_processors.topology import SupplyDemandProcessor

    config = ProcessorConfig(app_id="assign-test", bootstrap="127.0.0.1:1", registry_url="http://127.0.0.1:1",
                             datadir=str(tmp_path))

    async def main():
        consumer = SupplyDemandProcessor(config).app.consumer
        assigned = {TP(config.contributions_topic, 0), TP(config.topic("social_housing_availability"), 1)}
        seen: set = set()

        async def app_handler(partitions, generation_id):
            seen.update(consumer._get_active_partitions())

        consumer._on_partitions_assigned = app_handler
        await on_partitions_assigned(consumer, assigned, 0)
        return seen

    return asyncio.run(main())


def test_partitions_just_assigned_are_not_fetched_before_recovery_resumes_them(tmp_path):
    from faust.transport.consumer import Consumer

    from dataplatform.stream_processors.recovery import HeldStreams

    assert _active_while_the_app_handles_an_assignment(tmp_path / "ours", HeldStreams.on_partitions_assigned) == set()
    # Faust's own makes them all fetchable before its handler pauses them
    assert len(_active_while_the_app_handles_an_assignment(tmp_path / "faust", Consumer.on_partitions_assigned)) == 2
