"""A running bridge: its SQS queue long-polled, each domain event published as a change event.

For each batch (up to ten messages): every message is read (SNS envelope or raw), its
``eventType`` looked up in the spec, its ``detailUrl`` fetched when the mapping reads it
(the batch's fetches in parallel),
its entity mapped and checked, and its change event handed to the producer SDK; once the
broker has acknowledged every event (``acks=all``) and every dead letter, the batch is
deleted from the queue. A crash anywhere before the delete leaves the messages on the
queue: SQS delivers them again and they become the same events (the event id is the SNS
``MessageId``, the position comes from ``occurredAt``), which every subscriber drops as
repeats. While a batch is worked on (a slow detail API, a broker away), a keeper thread
extends the messages' visibility timeout so that SQS does not hand them to another reader.

A message that cannot become an event is dead-lettered (:mod:`.dead_letters`) with its
reason, then deleted; an unknown ``eventType`` is ignored instead when the spec says so.
Nothing is dropped silently: every outcome is counted (the log, :meth:`BridgeRunner.status`,
the status file that ``dataplatform bridge status`` reads and ``/metrics``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dataplatform.aws import aws_client, queue_url
from dataplatform.bridges.mapping import MappingError, context_of, entity_of, occurred_ms, position_of
from dataplatform.bridges.spec import Bridge
from dataplatform.config import Settings, get_settings
from dataplatform.metrics import BRIDGE_MESSAGES
from dataplatform.producers.bridges.dead_letters import BridgeDeadLetters
from dataplatform.producers.bridges.detail import DetailClient, DetailUnavailable, Stopping
from dataplatform.producers.bridges.messages import (DETAIL_UNAVAILABLE, INVALID_ENTITY, NOT_MAPPED, UNKNOWN_TYPE,
                                                     UNKNOWN_VERSION, Incoming, Poison, read_event, received)
from dataplatform.producers.publisher import DeliveryError, Publisher
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import DataProduct, get_product
from dataplatform.products.validation import RecordValidationError
from dataplatform.crash_points import crash_point

log = logging.getLogger(__name__)
PUBLISHED, IGNORED = "published", "ignored"
RETRY_AFTER_FAILURE_S = 5   # a batch the broker did not take is seen again this soon


class BridgeRunner:
    """One bridge: open it, then :meth:`run` until a stop event (or :meth:`poll_once` in a loop)."""

    def __init__(self, bridge: Bridge, settings: Settings | None = None, *, queue: str | None = None,
                 wait_seconds: int = 20, batch_size: int = 10, visibility_timeout: int = 30,
                 detail: DetailClient | None = None, status_dir: Path | None = None,
                 product: DataProduct | None = None, topic: str | None = None) -> None:
        self.bridge, self.settings = bridge, settings or get_settings()
        self.product = product or get_product(bridge.product)
        self.types = {f["name"]: f["type"] for f in self.product.entity_fields()}
        self.wait_seconds, self.batch_size, self.visibility_timeout = min(wait_seconds, 20), batch_size, visibility_timeout
        s = self.settings
        self.detail = detail or DetailClient(token_url=s.bridge_token_url, client_id=s.bridge_client_id,
                                             client_secret=s.bridge_client_secret.get_secret_value()
                                             if s.bridge_client_secret else None)
        self.sqs = aws_client("sqs", s)
        self.queue_url = queue_url(self.sqs, queue or bridge.queue)
        self.publisher = Publisher(self.product, source_system=bridge.system, settings=s, topic=topic)
        self.dead = BridgeDeadLetters(bridge.name, self.publisher.topic, self.queue_url.rsplit("/", 1)[-1],
                                      s.kafka_bootstrap_servers, s)
        self.status_file = status_dir / f"{bridge.name}.json" if status_dir else None
        self.counts: dict[str, int] = {}
        self.started_at = time.time()
        self.last_message_at: float | None = None
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=batch_size, thread_name_prefix=f"{bridge.name}-detail")

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> "BridgeRunner":
        self.publisher.open()
        log.info("bridge %s: reading %s into %s (%s)", self.bridge.name, self.queue_url, self.publisher.topic,
                 ", ".join(self.bridge.event_types))
        return self

    def close(self) -> None:
        try:
            self.publisher.close()
        finally:
            self._pool.shutdown(wait=True)
            self.detail.close()
            self._write_status()
            log.info("bridge %s stopped: %s", self.bridge.name, self._summary())

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; an unreachable queue is retried with backoff."""
        backoff, last_summary = 1.0, time.monotonic()
        self._stop = stop
        self.open()
        try:
            while not stop.is_set():
                try:
                    self.poll_once()
                    backoff = 1.0
                except Exception as exc:  # noqa: BLE001 - the queue or broker away: wait, then again
                    log.warning("bridge %s: %s; retrying in %.0fs", self.bridge.name, exc, backoff)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 30.0)
                if time.monotonic() - last_summary > 30:
                    log.info("bridge %s: %s", self.bridge.name, self._summary())
                    last_summary = time.monotonic()
        finally:
            self.close()

    # -- one batch -------------------------------------------------------------------------
    def poll_once(self) -> int:
        """Receive one batch and finish it; how many messages it had."""
        answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size,
                                          WaitTimeSeconds=self.wait_seconds, VisibilityTimeout=self.visibility_timeout)
        batch = [received(m) for m in answer.get("Messages", [])]
        if batch:
            with _VisibilityKeeper(self.sqs, self.queue_url, [m.receipt for m in batch], self.visibility_timeout):
                self._work(batch)
            self.last_message_at = time.time()
            self._write_status()
        return len(batch)

    def _work(self, batch: list[Incoming]) -> None:
        reads, fetches = self._read_all(batch)
        sent, finished, outcomes = [], [], []
        for i, incoming in enumerate(batch):
            if i == 1:
                crash_point("bridge.mid-batch")
            try:
                read = reads[incoming.sqs_id]
                if isinstance(read, Poison):
                    raise read
                incoming = read   # its SNS id, if any, goes with a dead letter
                event = self._change_event(incoming, fetches.get(incoming.sqs_id))
            except Stopping as exc:   # this message and the rest stay on the queue for the next run
                log.info("bridge %s: %s", self.bridge.name, exc)
                break
            except Poison as poison:
                self.dead.send(incoming, poison.reason, str(poison), _personal(incoming))
                finished.append(incoming)
                outcomes.append(poison.reason)
                continue
            if event is None:
                finished.append(incoming)
                outcomes.append(IGNORED)
            else:
                sent.append((incoming, self.publisher.publish(event, wait=False)))
        try:
            self.dead.flush()
        except Exception as exc:  # noqa: BLE001 - nothing deleted: the batch comes again
            self._retry_later(batch, f"the dead letters were not acknowledged: {exc}")
            return
        for incoming, handle in sent:
            try:
                handle.result()
            except (DeliveryError, TimeoutError) as exc:
                self._retry_later([incoming], f"the broker did not acknowledge event {incoming.event_id}: {exc}")
                continue
            finished.append(incoming)
            outcomes.append(PUBLISHED)
        crash_point("bridge.published")
        self._delete(finished)
        for outcome in outcomes:
            self.counts[outcome] = self.counts.get(outcome, 0) + 1
            BRIDGE_MESSAGES.labels(self.bridge.name, outcome).inc()

    def _read_all(self, batch: list[Incoming]) -> tuple[dict[str, Incoming | Poison], dict[str, Future]]:
        """Every message of the batch read, and the detail fetches it needs started at once (in
        parallel: a batch costs one round trip to the detail API, not ten)."""
        reads: dict[str, Incoming | Poison] = {}
        fetches: dict[str, Future] = {}
        for incoming in batch:
            try:
                reads[incoming.sqs_id] = read = read_event(incoming)
            except Poison as poison:
                reads[incoming.sqs_id] = poison
                continue
            mapping = self.bridge.mapping(read.event["eventType"])   # type: ignore[index]
            url = read.event.get("detailUrl")   # type: ignore[union-attr]
            if mapping is not None and mapping.reads_detail and isinstance(url, str):
                fetches[incoming.sqs_id] = self._pool.submit(self._fetch, url)
        return reads, fetches

    def _fetch(self, url: str) -> dict:
        crash_point("bridge.detail-fetch")
        return self.detail.fetch(url, self._stop)

    def _change_event(self, incoming: Incoming, fetch: Future | None) -> ChangeEvent | None:
        """The change event of one read message (None: an eventType to ignore); Poison if it has none."""
        event: dict[str, Any] = incoming.event   # type: ignore[assignment]
        mapping = self.bridge.mapping(event["eventType"])
        if mapping is None:
            if self.bridge.ignore_unknown:
                return None
            raise Poison(UNKNOWN_TYPE, f"eventType {event['eventType']!r} is not in the bridge spec "
                                       f"({', '.join(self.bridge.event_types)})")
        if event.get("version", 1) not in mapping.versions:
            raise Poison(UNKNOWN_VERSION, f"{event['eventType']} version {event.get('version')!r} is not one the "
                                          f"spec maps ({', '.join(map(str, mapping.versions))})")
        detail = None
        if mapping.reads_detail:
            if fetch is None:
                raise Poison(NOT_MAPPED, "the mapping reads detail but the event has no detailUrl")
            try:
                detail = fetch.result()
            except DetailUnavailable as exc:
                raise Poison(DETAIL_UNAVAILABLE, str(exc)) from None
        context = context_of(event, detail)
        try:
            entity = entity_of(mapping, context, self.types)
            position = position_of(_evaluate(mapping.position, context), incoming.event_id)
            ts_ms = occurred_ms(event)
        except MappingError as exc:
            raise Poison(NOT_MAPPED, str(exc)) from None
        try:
            self.publisher.validate(entity)
        except RecordValidationError as exc:
            raise Poison(INVALID_ENTITY, str(exc)) from None
        before, after = (entity, None) if mapping.op == "d" else (None, entity)
        return ChangeEvent(mapping.op, before, after, self.bridge.system, position, ts_ms, incoming.event_id)

    def _delete(self, finished: list[Incoming]) -> None:
        for start in range(0, len(finished), 10):
            entries = [{"Id": str(i), "ReceiptHandle": m.receipt} for i, m in enumerate(finished[start:start + 10])]
            answer = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            for failed in answer.get("Failed", []):   # seen again later; published again as the same event
                log.warning("bridge %s: could not delete a message: %s", self.bridge.name, failed.get("Message"))

    def _retry_later(self, batch: list[Incoming], why: str) -> None:
        log.warning("bridge %s: %s; the message(s) stay on the queue", self.bridge.name, why)
        entries = [{"Id": str(i), "ReceiptHandle": m.receipt, "VisibilityTimeout": RETRY_AFTER_FAILURE_S}
                   for i, m in enumerate(batch)]
        try:
            self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
        except Exception as exc:  # noqa: BLE001 - they come back after the visibility timeout anyway
            log.warning("bridge %s: could not shorten the visibility timeout: %s", self.bridge.name, exc)

    # -- what it has done ------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {"bridge": self.bridge.name, "queue": self.queue_url, "topic": self.publisher.topic,
                "event_types": list(self.bridge.event_types), "counts": dict(sorted(self.counts.items())),
                "detail_retries": self.detail.retries, "started_at": self.started_at,
                "last_message_at": self.last_message_at}

    def _summary(self) -> str:
        return ", ".join(f"{n} {outcome}" for outcome, n in sorted(self.counts.items())) or "no messages yet"

    def _write_status(self) -> None:
        if self.status_file is None:
            return
        self.status_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.status(), indent=2))
        tmp.replace(self.status_file)


def _evaluate(expression, context: dict) -> Any:  # noqa: ANN001
    try:
        return expression(context)
    except KeyError as exc:
        raise MappingError(f"position {expression.source!r} reads {exc.args[0]!r}, which this event does not have") from None


def _personal(incoming: Incoming) -> list[object]:
    """Values to keep out of a dead letter's error text: the person's identifiers."""
    reference = (incoming.event or {}).get("personReference") or {}
    return [i.get("value") for i in reference.get("identifiers") or [] if isinstance(i, dict)]


class _VisibilityKeeper:
    """While a batch is worked on, keeps its messages invisible to other readers (every third of the timeout)."""

    def __init__(self, sqs: Any, url: str, receipts: list[str], timeout: int) -> None:
        self.sqs, self.url, self.receipts, self.timeout = sqs, url, receipts, timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="bridge-visibility", daemon=True)

    def __enter__(self) -> "_VisibilityKeeper":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _keep(self) -> None:
        while not self._stop.wait(max(self.timeout / 3, 1)):
            entries = [{"Id": str(i), "ReceiptHandle": r, "VisibilityTimeout": self.timeout}
                       for i, r in enumerate(self.receipts)]
            try:
                for start in range(0, len(entries), 10):
                    self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries[start:start + 10])
            except Exception as exc:  # noqa: BLE001 - worst case: SQS delivers it again, the same event
                log.warning("could not extend the visibility of a batch: %s", exc)
