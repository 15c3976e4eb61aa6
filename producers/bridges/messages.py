"""What an SQS message of a bridge's queue holds: the HMPPS domain event, and its ids.

A queue subscribed to an SNS topic receives each event inside SNS's notification envelope
(``Type: Notification``, ``MessageId``, ``TopicArn``, ``Message`` holding the event as a
JSON string, ``Timestamp``, ``MessageAttributes``); with raw message delivery on, the body
is the event itself. Both are read here. The change event's id is the SNS ``MessageId``
(the same every time SQS delivers the message again, and the same for every queue the
topic fans out to); a raw message has no SNS id, so its SQS ``MessageId`` is used.

A body that is not JSON, not an envelope, or whose event has no ``eventType`` raises
:class:`Poison` with the reason the dead letter will carry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Why a message was not published: the reasons counted in the log, the status and /metrics,
# and written in a dead letter's header.
NOT_JSON = "not-json"
NOT_AN_EVENT = "not-a-domain-event"
UNKNOWN_TYPE = "unknown-event-type"
UNKNOWN_VERSION = "unknown-version"
DETAIL_UNAVAILABLE = "detail-unavailable"
NOT_MAPPED = "mapping-failed"
INVALID_ENTITY = "invalid-entity"
REASONS = (NOT_JSON, NOT_AN_EVENT, UNKNOWN_TYPE, UNKNOWN_VERSION, DETAIL_UNAVAILABLE, NOT_MAPPED, INVALID_ENTITY)


class Poison(ValueError):
    """A message the bridge cannot publish: ``reason`` (one of :data:`REASONS`) and the detail."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


@dataclass(frozen=True)
class Incoming:
    """One received message, as far as it could be read."""

    sqs_id: str
    receipt: str
    body: str
    sns_id: str | None = None
    event: dict[str, Any] | None = None

    @property
    def event_id(self) -> str:
        return self.sns_id or self.sqs_id


def received(message: dict[str, Any]) -> Incoming:
    """An SQS ``receive_message`` entry, its ids taken (the body not read yet)."""
    return Incoming(message["MessageId"], message["ReceiptHandle"], message.get("Body", ""))


def read_event(incoming: Incoming) -> Incoming:
    """``incoming`` with its domain event (and SNS id, when in an envelope); Poison if neither."""
    try:
        body = json.loads(incoming.body)
    except ValueError as exc:
        raise Poison(NOT_JSON, f"the message body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Poison(NOT_AN_EVENT, f"the message body is a JSON {type(body).__name__}, not an object")
    sns_id = None
    if body.get("Type") == "Notification" and "Message" in body:
        sns_id = str(body.get("MessageId") or "") or None
        try:
            body = json.loads(body["Message"])
        except (TypeError, ValueError) as exc:
            raise Poison(NOT_JSON, f"the SNS notification's Message is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise Poison(NOT_AN_EVENT, "the SNS notification's Message is not a JSON object")
    if not isinstance(body.get("eventType"), str) or not body["eventType"]:
        raise Poison(NOT_AN_EVENT, "no eventType: neither an HMPPS domain event nor an SNS notification holding one")
    return Incoming(incoming.sqs_id, incoming.receipt, incoming.body, sns_id, body)
