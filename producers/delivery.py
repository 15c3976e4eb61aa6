"""What a publish gives back: the result once acknowledged, a handle while waiting, the errors.

These are the SDK's answers to its callers, kept apart from :class:`~dataplatform.producers.publisher.Publisher`
(which decides when to wait) so that the shape of an answer can be read in one place: a
:class:`DeliveryResult` says where the broker stored an event once every in-sync replica has
it; a :class:`DeliveryHandle` is the batched path's future; a :class:`DeliveryError` lists
each event that was not acknowledged, and why, so the caller can publish it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import KafkaError


class PublisherError(RuntimeError):
    """The publisher could not start or was used wrongly."""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """Where the broker stored an event, once every in-sync replica has it."""

    topic: str
    partition: int
    offset: int
    event_id: str
    key: str


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    event_id: str
    key: str
    error: str


class DeliveryError(PublisherError):
    """Some events were not acknowledged by the broker; ``failures`` says which and why."""

    def __init__(self, failures: list[DeliveryFailure], topic: str = "") -> None:
        self.failures = failures
        lines = "\n".join(f"  - event {f.event_id} (key {f.key!r}): {f.error}" for f in failures[:20])
        more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
        super().__init__(f"{len(failures)} event(s) were not delivered to {topic or 'Kafka'}:\n{lines}{more}\n"
                         "Check that the broker is reachable and the topic exists; the events can be "
                         "published again with the same event ids.")


class _Tracker(Protocol):
    """What a handle needs from the publisher that made it: the publisher's own bookkeeping."""

    topic: str
    _failures: list[DeliveryFailure]

    def _wait_for(self, handle: DeliveryHandle, timeout: float | None) -> None: ...


#: librdkafka's "Local: Message timed out" alone does not say why, nor that the event may be
#: in the topic after all: with the cluster unable to take writes (fewer in-sync replicas
#: than min.insync.replicas, or no leader) it is what a publish ends with.
TIMED_OUT_HINT = ("not acknowledged within the producer's delivery.timeout.ms: no leader was reachable, or "
                  "fewer replicas were in sync than the topic's min.insync.replicas. It may still have been "
                  "written")


def explain(err: Any) -> str:
    """The broker's or client's error, with what it means when it is a delivery timeout."""
    code = getattr(err, "code", lambda: None)()
    if code == KafkaError._MSG_TIMED_OUT:
        return f"{TIMED_OUT_HINT} ({err})"
    return str(err)


class DeliveryHandle:
    """A future-like handle on one asynchronous publish."""

    __slots__ = ("event_id", "key", "_publisher", "_msg", "_error", "_done")

    def __init__(self, publisher: _Tracker, event_id: str, key: str) -> None:
        self.event_id = event_id
        self.key = key
        self._publisher = publisher
        self._msg: Any = None
        self._error: str | None = None
        self._done = False

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._error = explain(err)
            self._publisher._failures.append(DeliveryFailure(self.event_id, self.key, self._error))
        else:
            self._msg = msg  # the DeliveryResult is built only if someone asks for it
        self._done = True

    def done(self) -> bool:
        return self._done

    def succeeded(self) -> bool:
        return self._done and self._error is None

    def exception(self) -> DeliveryError | None:
        if self._error is None:
            return None
        return DeliveryError([DeliveryFailure(self.event_id, self.key, self._error)], self._publisher.topic)

    def result(self, timeout: float | None = None) -> DeliveryResult:
        """Wait for the broker's answer; the delivery result, or raise DeliveryError/TimeoutError."""
        self._publisher._wait_for(self, timeout)
        if self._error is not None:
            raise self.exception()  # type: ignore[misc]
        msg = self._msg
        return DeliveryResult(msg.topic(), msg.partition(), msg.offset(), self.event_id, self.key)
