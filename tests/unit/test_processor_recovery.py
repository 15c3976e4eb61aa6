"""The processor's Faust tables and where its streams start after an assignment
(stream_processors/engine/faust_patches/recovery.py, stream_processors/config.py)."""

from __future__ import annotations

import asyncio

from dataplatform.stream_processors.config import ProcessorConfig


def test_the_changelogs_created_up_front_are_the_ones_faust_writes_to(tmp_path):
    from dataplatform.stream_processors.engine.topology import DerivationProcessor

    config = ProcessorConfig(app_id="names-test", bootstrap="127.0.0.1:1", registry_url="http://127.0.0.1:1",
                             datadir=str(tmp_path))

    async def changelogs() -> set[str]:
        return set(DerivationProcessor(config).app.tables.changelog_topics)

    assert asyncio.run(changelogs()) == {config.changelog_topic(table) for table in config.tables}


def _active_while_the_app_handles_an_assignment(tmp_path, on_partitions_assigned) -> set:
    """The partitions the processor app's real consumer would fetch while the app handles a
    new assignment (its own handler stubbed: the real one pauses them, then recovers)."""
    from faust.types import TP

    from dataplatform.stream_processors.engine.topology import DerivationProcessor

    config = ProcessorConfig(app_id="assign-test", bootstrap="127.0.0.1:1", registry_url="http://127.0.0.1:1",
                             datadir=str(tmp_path))

    async def main():
        consumer = DerivationProcessor(config).app.consumer
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

    from dataplatform.stream_processors.engine.faust_patches.recovery import HeldStreams

    assert _active_while_the_app_handles_an_assignment(tmp_path / "ours", HeldStreams.on_partitions_assigned) == set()
    # Faust's own makes them all fetchable before its handler pauses them
    assert len(_active_while_the_app_handles_an_assignment(tmp_path / "faust", Consumer.on_partitions_assigned)) == 2


def _flow_during_the_seek(tmp_path, perform_seek) -> bool:
    """Whether the processor app's real consumer would fetch and deliver while ``perform_seek``
    seeks its partitions (the broker call stubbed)."""
    from dataplatform.stream_processors.engine.topology import DerivationProcessor

    config = ProcessorConfig(app_id="seek-flow-test", bootstrap="127.0.0.1:1", registry_url="http://127.0.0.1:1",
                             datadir=str(tmp_path))

    async def main():
        consumer = DerivationProcessor(config).app.consumer
        consumer.resume_flow()        # as it is during recovery
        seen = []

        async def seek_to_committed():
            seen.append(consumer.flow_active)
            return {}

        async def still_a_member():
            return None

        consumer.seek_to_committed = seek_to_committed
        consumer._thread.membership_lost = still_a_member
        await perform_seek(consumer)
        return seen[0]

    return asyncio.run(main())


def test_nothing_is_fetched_while_the_streams_are_seeked(tmp_path):
    from faust.transport.consumer import Consumer

    from dataplatform.stream_processors.engine.faust_patches.recovery import HeldStreams

    assert _flow_during_the_seek(tmp_path / "ours", HeldStreams.perform_seek) is False
    assert _flow_during_the_seek(tmp_path / "faust", Consumer.perform_seek) is True   # Faust's own keeps fetching
