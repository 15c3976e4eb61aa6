"""The Faust app: housing supply joined with release demand per area, rules, warnings.

::

    housing topic  ──▶ stage 1 (key: unit id)  ─┐  moves keyed by area   ┌─▶ area_supply_demand
                        table: latest unit     ├──▶ area-contributions ─▶ stage 2 (key: area) ┤
    releases topic ──▶ stage 1 (key: case id)  ─┘   (repartition topic)   tables: contributions,  └─▶ shortfall warnings
                        table: latest case                                 published figures, rule states

Faust's Stream.join/Table.join are not implemented, so the join is two keyed stages: the
first keeps each entity's latest state (keyed by entity id, on the input's partitions) and
emits "entity X contributes C to area A" to an area-keyed topic; the second, keyed by area,
holds the contributions per area and derives supply and demand from them. Every table is
changelog-backed, so a restarted worker resumes where the last one stopped. Both stages
work on batches (``take_events``): one repartition message per area and batch, the rules
stepped after every change, the derived figures sent once per area and batch (see
docs/stream-processing.md, "Batches"). The counting logic lives in plain Python (:mod:`stream_processors.supply_demand`, :mod:`.rules`,
:mod:`.evaluation`); this module only wires it to Kafka.
"""

from __future__ import annotations

import logging
import time
import weakref
from typing import Any

import faust
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from faust.streams import _current_event

from dataplatform.config import Settings, get_settings
from dataplatform.kafka_config import client_config, faust_broker_credentials
from dataplatform.serialization import registry_client
from dataplatform.topics import create_missing
from schemas.envelope import ChangeEvent
from schemas.product import DataProduct, load_products
from sinks.dead_letter import (
    H_ERROR_CLASS, H_ERROR_MESSAGE, H_SOURCE_OFFSET, H_SOURCE_PARTITION, H_SOURCE_TOPIC, scrub,
)
from stream_processors.codec import AvroEventCodec, Undecodable
from stream_processors.config import INPUTS, OUTPUTS, SUPPLY_DEMAND, WARNINGS, ProcessorConfig
from stream_processors.evaluation import derive_figures, evaluate_rules
from stream_processors.rules import load_rules
from stream_processors.supply_demand import (
    HOUSING, RELEASES,
    AreaState, Clock, Contribution, Move, SystemClock, area_message, areas_from_table, by_area, decide, moves_of_message,
    table_writes, tick_message,
)
from stream_processors.transport import broker_url

log = logging.getLogger(__name__)
H_PROCESSOR = "dlq.processor.app"
SHORT_NAMES = {HOUSING: "unit", RELEASES: "case"}   # entity key prefixes in the (changelogged) state
# table names: each one's changelog is <app id>-<name>-changelog (created by ensure_topics)
ENTITY_TABLES = {name: f"entities-{name}" for name in INPUTS}
AREAS_TABLE, PUBLISHED_TABLE, RULE_STATES_TABLE = "area-contributions", "area-published", "area-rule-states"
TABLES = [*ENTITY_TABLES.values(), AREAS_TABLE, PUBLISHED_TABLE, RULE_STATES_TABLE]


class TopicLayoutError(RuntimeError):
    """An existing topic has the wrong partition count for the co-partitioned join."""


def ensure_topics(config: ProcessorConfig, settings: Settings | None = None) -> list[str]:
    """Create the input, output, repartition, changelog and dead-letter topics when missing.

    Inputs and the repartition topic are co-partitioned with the tables' changelogs, so
    they must all have ``config.partitions`` partitions; an existing input with another
    count is refused with a message saying how to fix it. The changelogs are created here
    rather than by Faust: a changelog Faust creates itself is missing from its consumer's
    first metadata, and Faust then refuses the table's first write (``PartitionsMismatch``,
    "the changelog has 0 partitions") until the metadata is refreshed minutes later.
    """
    admin = AdminClient(client_config(config.bootstrap, settings))
    inputs = [config.topic(p) for p in INPUTS]
    names = inputs + [config.contributions_topic] + [config.topic(p) for p in OUTPUTS] + [f"{t}.dlq" for t in inputs]
    changelogs = [f"{config.app_id}-{table}-changelog" for table in TABLES]
    create_missing(admin, [NewTopic(n, config.partitions, config.replication_factor) for n in names]
                   + [NewTopic(n, config.partitions, config.replication_factor, config={"cleanup.policy": "compact"})
                      for n in changelogs])
    metadata = _metadata_with(admin, names + changelogs)
    for name in inputs + [config.contributions_topic] + changelogs:
        count = len(metadata[name].partitions)
        if count != config.partitions:
            raise TopicLayoutError(
                f"topic {name} has {count} partitions but the processor's tables have {config.partitions}: "
                f"run with --partitions {count}, or recreate the topic with {config.partitions} partitions")
    return names + changelogs


def seed_group_offsets(config: ProcessorConfig, settings: Settings | None = None) -> int:
    """Commit the earliest offset for every consumed partition the group has no offset for.

    Works around a Faust/aiokafka behaviour seen here (faust-streaming issue #629): after a
    rebalance, a partition the group never committed is sometimes never fetched again, so
    a second worker joining before the first event of a topic stalls that topic. With an
    offset committed for every partition up front, a rebalance always has a position to
    seek to. Equivalent to auto.offset.reset=earliest; only possible while the group is
    empty, so a refused commit (a worker is already running) is ignored. Returns how many
    partitions were seeded.
    """
    from confluent_kafka import Consumer, TopicPartition

    topics = [config.topic(p) for p in INPUTS] + [config.contributions_topic]
    partitions = [TopicPartition(t, p) for t in topics for p in range(config.partitions)]
    deadline = time.monotonic() + 30
    while True:
        consumer = Consumer({**client_config(config.bootstrap, settings), "group.id": config.app_id,
                             "enable.auto.commit": False})
        try:
            missing = []
            for tp in consumer.committed(partitions, timeout=30):
                if tp.offset < 0:
                    low, _ = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=30)
                    missing.append(TopicPartition(tp.topic, tp.partition, low))
            if missing:
                consumer.commit(offsets=missing, asynchronous=False)
            return len(missing)
        except KafkaException as exc:
            error = exc.args[0]
            # new topics: leaders are still being elected; retry. Anything else (a worker
            # already in the group refuses the commit): leave it to the running group.
            if error.code() in _NOT_READY and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            log.info("not seeding offsets of %s: %s", config.app_id, error)
            return 0
        finally:
            consumer.close()


_NOT_READY = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
              KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TIMED_OUT, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
              KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR}


def _metadata_with(admin: AdminClient, names: list[str], timeout: float = 30.0) -> dict:
    """Topic metadata once every name is visible (a new topic takes a moment to appear)."""
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=timeout).topics
        missing = [n for n in names if n not in topics or not topics[n].partitions]
        if not missing:
            return topics
        if time.monotonic() > deadline:
            raise TopicLayoutError(f"topics {', '.join(missing)} did not appear within {timeout}s")
        time.sleep(0.2)


class SupplyDemandProcessor:
    """Builds the Faust app for one configuration; ``app`` is what a worker runs."""

    def __init__(self, config: ProcessorConfig, clock: Clock | None = None, settings: Settings | None = None) -> None:
        self.config = config
        self.settings = settings or get_settings()
        self.clock = clock or SystemClock()
        self.rules = load_rules(config.rules_path, config.horizon_days)
        self.products: dict[str, DataProduct] = load_products()
        client = registry_client(config.registry_url)
        self.codecs = {name: AvroEventCodec(self.products[name], client, config.topic(name))
                       for name in INPUTS + OUTPUTS}
        self._areas: dict[str, AreaState] | None = None   # stage 2's areas in memory, see _area
        self._areas_generation = -1
        self.app = self._make_app()
        self._wire()

    def warm(self) -> None:
        """Fetch every schema id once, before the event loop starts decoding."""
        for codec in self.codecs.values():
            codec.warm()

    def _make_app(self) -> faust.App:
        c = self.config
        return faust.App(
            c.app_id,
            broker=broker_url(c.bootstrap),
            broker_credentials=faust_broker_credentials(self.settings),
            store="memory://",
            topic_partitions=c.partitions,
            topic_replication_factor=c.replication_factor,
            table_standby_replicas=0,
            processing_guarantee=c.processing_guarantee,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            web_enabled=False,
            datadir=c.datadir,
            key_serializer="raw",
            value_serializer="json",
            broker_commit_every=10_000,
            broker_commit_interval=1.0,
            producer_linger=0.01,
        )

    def _wire(self) -> None:
        app, c = self.app, self.config
        self.contributions = app.topic(c.contributions_topic, key_type=str, value_type=None,
                                       key_serializer="raw", value_serializer="json",
                                       partitions=c.partitions, internal=False)
        self.outputs = {name: app.topic(c.topic(name), key_serializer="raw", value_serializer=self.codecs[name])
                        for name in OUTPUTS}
        self.dead_letters = {name: app.topic(f"{c.topic(name)}.dlq", key_serializer="raw", value_serializer="raw")
                             for name in INPUTS}
        table = dict(partitions=c.partitions, key_type=str, default=None)
        self.entities = {name: app.Table(ENTITY_TABLES[name], **table) for name in INPUTS}
        self.areas = app.Table(AREAS_TABLE, **table)
        self.published = app.Table(PUBLISHED_TABLE, **table)
        self.rule_states = app.Table(RULE_STATES_TABLE, **table)
        for name in INPUTS:
            source = app.topic(c.topic(name), key_serializer="raw", value_serializer=self.codecs[name],
                               partitions=c.partitions)
            app.agent(source, name=f"stage1-{name}")(self._stage1(name))
        app.agent(self.contributions, name="stage2-areas")(self._stage2)
        app.timer(c.tick_seconds, name="horizon-tick")(self._tick)

    # -- stage 1 --------------------------------------------------------------------------
    def _stage1(self, product_name: str):
        product, table = self.products[product_name], self.entities[product_name]

        async def agent(stream: faust.Stream) -> None:
            async for events in stream.take_events(self.config.batch_size, within=self.config.batch_seconds):
                moves: list[Move] = []
                for event in events:
                    processing(event)
                    moves += await self._on_entity_event(product, table, event)
                # one repartition message per area and batch, not one per move
                for area_code, area_moves in by_area(moves).items():
                    await self.contributions.send(key=area_code, value=area_message(area_moves))

        agent.__name__ = f"stage1_{product_name}"
        return agent

    async def _on_entity_event(self, product: DataProduct, table: Any, event: faust.types.EventT) -> list[Move]:
        """Store the entity's new state; the moves it implies (sent by the caller, batched)."""
        value = event.value
        if value is None:
            return []  # tombstone after a delete: the delete itself already did the work
        if isinstance(value, Undecodable):
            await self._dead_letter(product.name, event, value.error_class, value.error_message)
            return []
        try:
            change = ChangeEvent.from_record(value)
            entity_key = f"{SHORT_NAMES[product.name]}:{product.key_of(change.entity)}"
            decision = decide(product.name, entity_key, change.op, change.entity, change.position,
                              change.ts_ms, table.get(entity_key))
        except Exception as exc:  # noqa: BLE001 - an unprocessable event is a dead letter
            entity = (value.get("after") or value.get("before") or {}) if isinstance(value, dict) else {}
            personal = [entity.get(f) for f in product.personal_fields]
            await self._dead_letter(product.name, event, type(exc).__name__, scrub(str(exc), personal))
            return []
        if decision.state is not None:
            table[entity_key] = decision.state
        return decision.moves

    async def _dead_letter(self, product_name: str, event: faust.types.EventT, error_class: str,
                           error_message: str) -> None:
        msg = event.message
        headers = [
            (H_SOURCE_TOPIC, msg.topic.encode()), (H_SOURCE_PARTITION, str(msg.partition).encode()),
            (H_SOURCE_OFFSET, str(msg.offset).encode()), (H_ERROR_CLASS, error_class.encode()),
            (H_ERROR_MESSAGE, error_message.encode("utf-8")), (H_PROCESSOR, self.config.app_id.encode()),
        ]
        log.warning("dead letter %s[%d]@%d: %s: %s", msg.topic, msg.partition, msg.offset, error_class, error_message)
        await self.dead_letters[product_name].send(key=msg.key, value=msg.value, headers=headers)

    # -- stage 2 --------------------------------------------------------------------------
    async def _stage2(self, stream: faust.Stream) -> None:
        async for events in stream.take_events(self.config.batch_size, within=self.config.batch_seconds):
            areas: dict[str, list[faust.types.EventT]] = {}
            for event in events:
                areas.setdefault(event.value["area"], []).append(event)
            for area_code, area_events in areas.items():
                processing(area_events[-1])   # the area's changelog partition
                await self._on_area_messages(area_code, [e.value for e in area_events])

    async def _on_area_messages(self, area_code: str, messages: list[dict[str, Any]]) -> None:
        """Apply a batch of moves (and ticks) to one area, in order.

        The rules step after every move that changed the area and on every tick, exactly as
        if the messages came one by one, so warnings do not depend on batching. The derived
        figures are sent once, at the end of the batch, and each changed member is written
        once.
        """
        moves = [moves_of_message(m) for m in messages]
        area = self._area(area_code, next((ms[0] for ms in moves if ms), None))
        if area is None:
            return  # a tick for an area this worker holds nothing of
        try:
            await self._step(area, messages, moves)
        except BaseException:
            self._areas = None   # memory may now be ahead of the table: rebuild it from the table
            raise

    async def _step(self, area: AreaState, messages: list[dict[str, Any]], moves: list[list[Move]]) -> None:
        area_code = area.area_code
        old_rules = rule_states = self.rule_states.get(area_code)
        warnings: list[ChangeEvent] = []
        changed: dict[str, Contribution | None] = {}   # entity -> its contribution after the batch
        for message, message_moves in zip(messages, moves):
            for move in message_moves:
                if not area.apply(move):
                    continue   # a duplicate or replay changes nothing
                changed[move.entity_key] = move.contribution
                rule_states, events = evaluate_rules(area, rule_states, self.rules, self.clock)
                warnings += events
            if message.get("tick"):
                rule_states, events = evaluate_rules(area, rule_states, self.rules, self.clock)
                warnings += events
        if not changed and rule_states == old_rules and not any(m.get("tick") for m in messages):
            return
        if changed:
            self._areas.setdefault(area_code, area)   # an area new here is kept once a move changed it
        published, change = derive_figures(area, self.published.get(area_code), self.rules, self.clock)
        # outputs first, state after: a crash in between re-sends (at-least-once), never loses
        if change is not None:
            await self.outputs[SUPPLY_DEMAND].send(key=area_code, value=change.to_record())
        for event in warnings:
            await self.outputs[WARNINGS].send(key=event.after["warning_id"], value=event.to_record())
        for key, value in table_writes(area, changed):
            if value is not None:
                self.areas[key] = value
            elif key in self.areas:
                del self.areas[key]   # a tombstone in the changelog
        if change is not None:
            self.published[area_code] = published
        if rule_states != old_rules:
            self.rule_states[area_code] = rule_states

    def _area(self, area_code: str, move: Move | None) -> AreaState | None:
        """The area as one :class:`AreaState` (None: nothing held and nothing moving in).

        Stage 2 keeps every area it holds in memory, with the tally its figures come from,
        and writes only the members that change to the table. The memory is rebuilt from
        the table, in one pass, after every rebalance (the table then holds what the
        changelogs of this worker's partitions restored) and after a failed step.
        """
        if self._held_areas() is None:
            self._areas = areas_from_table(self.areas.items())
            self._areas_generation = self.app.rebalancing_count
        area = self._areas.get(area_code)
        if area is None:
            # new here: _step keeps it once a move changed it, so a no-op never makes an area
            return AreaState(area_code, move.level, move.region_code) if move is not None else None
        if not area.level and move is not None:
            area.level, area.region_code = move.level, move.region_code
        return area

    def _held_areas(self) -> dict[str, AreaState] | None:
        """The areas in memory, or None when they must be rebuilt from the table (never
        built, a rebalance since, or a step failed)."""
        if self._areas is not None and self._areas_generation == self.app.rebalancing_count:
            return self._areas
        return None

    async def _tick(self) -> None:
        """The horizon moves with the clock: re-evaluate every area this worker holds."""
        areas = self._held_areas()
        if areas is None:
            areas = areas_from_table(self.areas.items())   # read only: the agent owns self._areas
        for area_code in sorted(areas):
            await self.contributions.send(key=area_code, value=tick_message(area_code))


def processing(event: faust.types.EventT) -> None:
    """Make ``event`` the one a table write belongs to (its changelog partition), in this task.

    Faust's tables take the partition of a write from the task-local current event, which
    its stream sets per event; a batch from ``take_events`` is processed after the fact, so
    each write is tagged here. Only the task-local variable is set: ``Stream.current_event``
    is what ``take_events``' own buffering reads, and must not be touched.
    """
    _current_event.set(weakref.ref(event))


def build_app(config: ProcessorConfig, clock: Clock | None = None, warm: bool = True,
              settings: Settings | None = None) -> SupplyDemandProcessor:
    """The processor for ``config`` (resolved), with its registry cache warmed."""
    processor = SupplyDemandProcessor(config, clock, settings)
    if warm:
        processor.warm()
    return processor
