"""The Faust app a derivation spec compiles to: inputs joined per group, rules, warnings.

The engine's stage code: it runs the core's steps on Kafka, and makes their effects
durable through the engine's two interfaces, the :class:`~.checkpoint.Checkpoint` and the
:class:`~.store.Store`, not through Faust's producer and tables. (Dead letters, horizon
ticks and heartbeats (:mod:`.heartbeats`) still go out through Faust's topics: Faust
attaches a send made while an event is current to that event and publishes it when the
event is acknowledged, and sending them otherwise would change when they are written.)

::

    input topic A ─┐                               moves keyed by group                            ┌─▶ figures product
                   ├─▶ stage 1 (key: entity id) ──▶ group-contributions ──▶ stage 2 (key: group) ─┤
    input topic B ─┘   a table per input: latest    (repartition topic)     table: groups          └─▶ warnings product
                       state of each entity

Faust's Stream.join/Table.join are not implemented, so the join is two keyed stages: the
first keeps each entity's latest state (keyed by entity id, on the input's partitions) and
emits "entity X contributes C to group G" to a group-keyed topic; the second, keyed by
group, holds the contributions per group and derives the measures from them. What counts,
where and how is the spec's, compiled by :mod:`..core.compiled`; this module is the same for
every spec. Both stages work on batches (``take_events``).

Crash safety (docs/stream-processing.md, "Crashes"): each batch sends its outputs, makes
them durable, then writes the state they came from and makes that durable, and only then
are its events acknowledged, so Faust never commits an offset past an effect that could
still be lost (:mod:`.checkpoint`). A batch that fails stops the worker at once
(:mod:`.batches`): its events are never acknowledged, and a restarted worker redoes them
from the state the changelogs restore. Stage 2's outputs are a pure function of that state and the repartition messages
(:mod:`..core.group_step`), so a redone step re-sends exactly the same events. The
counting logic is plain Python, the core (:mod:`dataplatform.stream_processors.core`); this
module wires it to Kafka.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import faust
from faust.serializers import codecs

from dataplatform.config import Settings, get_settings
from dataplatform.heartbeat import Heartbeat
from dataplatform.kafka_config import client_config
from dataplatform.product_io.names import dead_letter_topic
from dataplatform.product_io.serialization import registry_client
from dataplatform.products.envelope import ChangeEvent, epoch_ms
from dataplatform.products.personal_data import personal_values
from dataplatform.products.product import DataProduct, load_products
from dataplatform.product_io.dead_letters import H_PROCESSOR, already_dead_lettered, dead_letter_headers, scrub
from dataplatform.crash_points import crash_point
from dataplatform.stream_processors.config import GROUPS_TABLE, ProcessorConfig, entity_table
from dataplatform.stream_processors.core.clock import Clock, SystemClock
from dataplatform.stream_processors.core.compiled import CompiledDerivation
from dataplatform.stream_processors.core.entity_step import Move, by_group, decide, group_message, tick_message
from dataplatform.stream_processors.core.group_step import step_group
from dataplatform.stream_processors.engine.app import faust_app
from dataplatform.stream_processors.engine.batches import batch_agent
from dataplatform.stream_processors.engine.checkpoint import Checkpoint, FaustCheckpoint
from dataplatform.stream_processors.engine.codec import AvroEventCodec, Undecodable
from dataplatform.stream_processors.engine.continuity import Continuity, broker_probe
from dataplatform.stream_processors.engine.fast_restore import BulkRestore
from dataplatform.stream_processors.engine.heartbeats import Heartbeats
from dataplatform.stream_processors.engine.held_groups import HeldGroups
from dataplatform.stream_processors.engine.store import Store

log = logging.getLogger(__name__)


class DerivationProcessor:
    """Builds the Faust app for one configuration; ``app`` is what a worker runs."""

    def __init__(self, config: ProcessorConfig, clock: Clock | None = None, settings: Settings | None = None) -> None:
        self.config = config
        self.settings = settings or get_settings()
        self.clock = clock or SystemClock()
        self.compiled = CompiledDerivation(config.spec)
        self.products: dict[str, DataProduct] = load_products()
        client = registry_client(config.registry_url)
        self.codecs = {name: AvroEventCodec(self.products[name], client, config.topic(name))
                       for name in config.inputs + config.outputs}
        self._dead_lettered: set[tuple[str, int, int]] = set()   # by this app before this worker started
        self.activity = Activity()
        self.app = faust_app(config, self.settings)
        self.checkpoint: Checkpoint = FaustCheckpoint(self.app)
        self._wire()

    def warm(self) -> None:
        """Fetch every schema id once, before the event loop starts decoding; learn which
        input records this app has dead-lettered already (a replay does not send them again)."""
        for codec in self.codecs.values():
            codec.warm()
        for name in self.config.inputs:
            self._dead_lettered |= already_dead_lettered(dead_letter_topic(self.config.topic(name)), H_PROCESSOR,
                                                         self.config.app_id, self.config.bootstrap, self.settings)

    def _wire(self) -> None:
        app, c = self.app, self.config
        continuity = app.consumer.continuity = Continuity(broker_probe(c.bootstrap, self.settings))
        self.contributions = app.topic(c.contributions_topic, key_type=str, value_type=None,
                                       key_serializer="raw", value_serializer="json",
                                       partitions=c.partitions, internal=False)
        self._json = codecs.get_codec(self.contributions.value_serializer)   # stage 1 sends them in batches
        self.dead_letters = {name: app.topic(dead_letter_topic(c.topic(name)), key_serializer="raw", value_serializer="raw")
                             for name in c.inputs}
        table = dict(partitions=c.partitions, key_type=str, default=None)
        self.entities: dict[str, Store] = {name: app.Table(entity_table(name), **table) for name in c.inputs}
        self.groups: Store = app.Table(GROUPS_TABLE, **table)
        restore = BulkRestore(client_config(c.bootstrap, self.settings), c.bulk_restore_from, c.bulk_restore_batch)
        for each in (*self.entities.values(), self.groups):
            each.bulk_restore = restore
        self.held = HeldGroups(self.groups, lambda: app.rebalancing_count)
        # one stage 1 agent over every input: a batch sends one repartition message per group,
        # whichever inputs moved it (the codec decodes by schema id, whatever the product)
        self.input_of = {c.topic(name): self.products[name] for name in c.inputs}
        sources = app.topic(*self.input_of, key_serializer="raw", value_serializer=self.codecs[c.inputs[0]],
                            partitions=c.partitions)
        app.agent(sources, name="stage1-entities")(batch_agent(self._stage1_batch, c, continuity))
        app.agent(self.contributions, name="stage2-groups")(batch_agent(self._stage2_batch, c, continuity))
        app.timer(c.tick_seconds, name="horizon-tick")(self._tick)
        self.heartbeats = Heartbeats(app, c.instance_id or c.app_id, c.heartbeat_seconds)
        app.timer(c.heartbeat_seconds, name="heartbeat")(self._heartbeat)

    # -- stage 1 --------------------------------------------------------------------------
    async def _stage1_batch(self, events: list[faust.types.EventT]) -> None:
        """Moves out and durable, then the entity states that imply them."""
        moves: list[Move] = []
        states: dict[str, tuple[str, faust.types.EventT, dict]] = {}   # new states (product, event, state), not yet written
        for event in events:
            moves += await self._on_entity_event(self.input_of[event.message.topic], states, event)
        self.activity.events_in += len(events)
        now_ms = epoch_ms(self.clock.now())
        messages = [(code.encode(), self._json.dumps(group_message(group_moves, now_ms)))
                    for code, group_moves in by_group(moves).items()]
        if messages:
            await self.checkpoint.send(self.config.contributions_topic, messages)
            crash_point("stage1.repartition-sent")
        await self.checkpoint.durable()
        for name, table in self.entities.items():
            writes = ((event, (key, state)) for key, (product, event, state) in states.items() if product == name)
            for event, part in by_partition(writes):
                await table.write(event, part)
        crash_point("stage1.state-queued")
        await self.checkpoint.durable()

    async def _on_entity_event(self, product: DataProduct, states: dict[str, tuple[str, Any, dict]],
                               event: faust.types.EventT) -> list[Move]:
        """The moves an event implies; its entity's new state goes into ``states``."""
        value = event.value
        if value is None:
            return []  # tombstone after a delete: the delete itself already did the work
        if isinstance(value, Undecodable):
            await self._dead_letter(product.name, event, value.error_class, value.error_message)
            return []
        try:
            change = ChangeEvent.from_record(value)
            self.activity.last_input_ms = max(self.activity.last_input_ms or 0, change.ts_ms)
            entity_key = f"{self.compiled.inputs[product.name].role}:{product.key_of(change.entity)}"
            previous = states[entity_key][2] if entity_key in states else self.entities[product.name].read(event, entity_key)
            decision = decide(self.compiled, product.name, entity_key, change.op, change.entity, change.position,
                              change.ts_ms, previous)
        except Exception as exc:  # noqa: BLE001 - an unprocessable event is a dead letter
            personal = personal_values(product, value if isinstance(value, dict) else None)
            await self._dead_letter(product.name, event, type(exc).__name__, scrub(str(exc), personal))
            return []
        if decision.state is not None:
            states[entity_key] = (product.name, event, decision.state)
        return decision.moves

    async def _dead_letter(self, product_name: str, event: faust.types.EventT, error_class: str,
                           error_message: str) -> None:
        msg = event.message
        if (msg.topic, msg.partition, msg.offset) in self._dead_lettered:
            log.info("%s[%d]@%d is already dead-lettered (before a restart)", msg.topic, msg.partition, msg.offset)
            return
        headers = dead_letter_headers(msg.topic, msg.partition, msg.offset, error_class, error_message,
                                      extra={H_PROCESSOR: self.config.app_id})
        log.warning("dead letter %s[%d]@%d: %s: %s", msg.topic, msg.partition, msg.offset, error_class, error_message)
        await self.dead_letters[product_name].send(key=msg.key, value=msg.value, headers=headers)

    # -- stage 2 --------------------------------------------------------------------------
    async def _stage2_batch(self, events: list[faust.types.EventT]) -> None:
        """Per group: step it; send every output and the member writes, make them durable,
        then write each group's head (its commit record) and make that durable."""
        started = time.monotonic()
        figures, warnings = self.config.outputs
        self.held.renew()
        messages: dict[str, list[tuple[int, dict]]] = {}
        last_event: dict[str, faust.types.EventT] = {}
        for event in events:
            code = event.value["group"]
            messages.setdefault(code, []).append((event.message.offset, event.value))
            last_event[code] = event   # the group's changelog partition
        steps = []
        for code, group_messages in messages.items():
            group = self.held.get(code, last_event[code])
            step = step_group(self.compiled, group, group_messages)
            if step is not None:
                self.held.keep(group)
                steps.append(step)
        outputs = [(name, key.encode(), self.codecs[name].dumps(event.to_record())) for step in steps
                   for name, key, event in [*((figures, step.code, e) for e in step.figures),
                                            *((warnings, e.after["warning_id"], e) for e in step.warnings)]]
        for i, (name, key, value) in enumerate(outputs[:2]):   # alone: crash tests stop after the first and second
            await self.checkpoint.send(self.config.topic(name), [(key, value)])
            crash_point("stage2.output-sent" if i == 0 else "stage2.outputs-between")
        for name in (figures, warnings):
            if rest := [(key, value) for output, key, value in outputs[2:] if output == name]:
                await self.checkpoint.send(self.config.topic(name), rest)
        for event, writes in by_partition((last_event[step.code], write) for step in steps for write in step.members):
            await self.groups.write(event, writes)
        crash_point("stage2.members-queued")
        await self.checkpoint.durable()
        for event, writes in by_partition((last_event[step.code], step.head) for step in steps):
            await self.groups.write(event, writes)
        crash_point("stage2.heads-queued")
        await self.checkpoint.durable()
        self.activity.stepped(time.monotonic() - started, [name for name, _, _ in outputs])

    async def _heartbeat(self) -> None:
        """Tell operations this worker is alive and how far it got, per derived product (the
        live warnings page tells "all clear" from "nothing running" by it)."""
        p, component = self.activity, self.config.instance_id or self.config.app_id
        await self.heartbeats.send([Heartbeat(component, name, p.last_step_ms, p.last_input_ms,
                                              step_seconds=p.step_seconds, events_in=p.events_in,
                                              events_out=p.events_out.get(name, 0)) for name in self.config.outputs])

    async def _tick(self) -> None:
        """The horizon moves with the clock: re-evaluate every group this worker holds."""
        now_ms = epoch_ms(self.clock.now())
        for code in self.held.stepped_codes():
            await self.contributions.send(key=code, value=tick_message(code, now_ms))


def by_partition(writes: Iterable[tuple[faust.types.EventT, tuple[str, Any]]]
                 ) -> Iterable[tuple[faust.types.EventT, list[tuple[str, Any]]]]:
    """``(event, (key, value))`` writes gathered per partition of their events, as ``(an event
    of that partition, [(key, value), ...])``, each list in the order given: a table value goes
    to the changelog partition of the event it comes from."""
    out: dict[int, tuple[faust.types.EventT, list[tuple[str, Any]]]] = {}
    for event, write in writes:
        out.setdefault(event.message.partition, (event, []))[1].append(write)
    return out.values()


class Activity:
    """What this worker has done, as its heartbeat says it: when stage 2 last stepped, the
    newest input event seen, counts. (Not the deployment's watchdog, which judges a whole
    group from its committed offsets: :mod:`dataplatform.stream_processors.deployment.progress`.)"""

    def __init__(self) -> None:
        self.last_step_ms: int | None = None
        self.last_input_ms: int | None = None
        self.step_seconds: float | None = None
        self.events_in = 0
        self.events_out: dict[str, int] = {}   # per derived product, so each is counted once

    def stepped(self, seconds: float, outputs: list[str]) -> None:
        """A step that sent ``outputs`` (the derived product of each event sent)."""
        self.last_step_ms, self.step_seconds = epoch_ms(), round(seconds, 4)
        for name in outputs:
            self.events_out[name] = self.events_out.get(name, 0) + 1


def build_app(config: ProcessorConfig, clock: Clock | None = None, warm: bool = True,
              settings: Settings | None = None) -> DerivationProcessor:
    """The processor for ``config`` (resolved), with its registry cache warmed."""
    processor = DerivationProcessor(config, clock, settings)
    if warm:
        processor.warm()
    return processor
