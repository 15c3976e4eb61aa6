"""A bridge's dead letters: a message it cannot publish, copied to the product's dead-letter topic.

The copy is the message's raw body (whatever it was: not JSON, an unknown event, ...) with
the platform's dead-letter headers (:func:`~dataplatform.product_io.dead_letters.dead_letter_headers`):
the source is ``sqs:<queue>`` (no partition or offset: ``-1``), the reason, the SQS and
SNS message ids and the bridge. The copy is acknowledged before the message is deleted
from the queue. Once: a bridge killed after the copy and before the delete meets the
message again; the SQS ids already in the topic (read on the first dead letter after a
start) are not copied again.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from dataplatform.config import Settings
from dataplatform.kafka_config import reliable_producer_config
from dataplatform.product_io.dead_letters import (H_BRIDGE, H_REASON, H_SNS_MESSAGE_ID, H_SQS_MESSAGE_ID,
                                                  dead_letter_headers, dead_lettered_values,
                                                  ensure_dead_letter_topics, scrub)
from dataplatform.product_io.names import dead_letter_topic
from dataplatform.producers.bridges.messages import Incoming

log = logging.getLogger(__name__)


class BridgeDeadLetters:
    """Copies one bridge's poison messages to its product's dead-letter topic."""

    def __init__(self, bridge: str, product_topic: str, queue_name: str, bootstrap: str | None,
                 settings: Settings | None) -> None:
        self.bridge, self.source = bridge, product_topic
        self.topic = dead_letter_topic(product_topic)
        self.queue_name = queue_name
        self._bootstrap, self._settings = bootstrap, settings
        self._producer: Producer | None = None
        self._ledger: set[str] | None = None
        self._errors: list[KafkaError] = []

    def send(self, incoming: Incoming, reason: str, error: str, personal_values: list[object] | None = None) -> bool:
        """Queue the copy (False: already in the topic); :meth:`flush` waits for it."""
        if self._ledger is None:
            ensure_dead_letter_topics([self.source], self._bootstrap, self._settings)
            self._ledger = dead_lettered_values(self.topic, H_BRIDGE, self.bridge, H_SQS_MESSAGE_ID,
                                                self._bootstrap, self._settings)
        if incoming.sqs_id in self._ledger:
            log.info("SQS message %s is already in %s (sent before a restart)", incoming.sqs_id, self.topic)
            return False
        text = scrub(error, personal_values)
        extra = {H_BRIDGE: self.bridge, H_REASON: reason, H_SQS_MESSAGE_ID: incoming.sqs_id}
        if incoming.sns_id:
            extra[H_SNS_MESSAGE_ID] = incoming.sns_id
        headers = dead_letter_headers(f"sqs:{self.queue_name}", -1, -1, "dataplatform.bridge." + reason, text, extra)
        if self._producer is None:
            self._producer = Producer(reliable_producer_config(self._bootstrap, self._settings))
        self._producer.produce(self.topic, key=incoming.event_id.encode(), value=incoming.body.encode("utf-8"),
                               headers=headers, on_delivery=self._on_delivery)
        self._ledger.add(incoming.sqs_id)
        log.warning("dead-lettered SQS message %s to %s: %s: %s", incoming.sqs_id, self.topic, reason, text)
        return True

    def flush(self, timeout: float = 130.0) -> None:
        """Wait until every queued copy is acknowledged; raise if any was not."""
        if self._producer is None:
            return
        remaining = self._producer.flush(timeout)
        if remaining or self._errors:
            errors, self._errors = self._errors, []
            self._ledger = None   # read again: what was queued may not be there
            raise KafkaException(errors[0] if errors else KafkaError(KafkaError._TIMED_OUT))

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._errors.append(err)
