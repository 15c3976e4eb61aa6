"""Dead-letter topics are created by one function with one rule: the source topic's layout."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from dataplatform.kafka_config import client_config
from dataplatform.product_io.dead_letters import RETENTION_MS, ensure_dead_letter_topics
from dataplatform.product_io.names import dead_letter_topic
from tests.support.kafka import create_topic, unique_name


def test_a_dead_letter_topic_has_its_source_topics_partitions_and_is_created_once(bootstrap) -> None:
    narrow, wide = create_topic(bootstrap, unique_name("dlq-src"), 1), create_topic(bootstrap, unique_name("dlq-src"), 3)

    created = ensure_dead_letter_topics([narrow, wide], bootstrap)

    assert sorted(created) == sorted([dead_letter_topic(narrow), dead_letter_topic(wide)])
    admin = AdminClient(client_config(bootstrap))
    topics = admin.list_topics(timeout=30).topics
    assert len(topics[dead_letter_topic(narrow)].partitions) == 1
    assert len(topics[dead_letter_topic(wide)].partitions) == 3
    resource = ConfigResource(ConfigResource.Type.TOPIC, dead_letter_topic(wide))
    config = admin.describe_configs([resource])[resource].result(30)
    assert config["retention.ms"].value == str(RETENTION_MS)
    assert ensure_dead_letter_topics([wide], bootstrap) == []


def test_a_dead_letter_topic_of_a_missing_source_is_refused_with_the_reason(bootstrap) -> None:
    missing = unique_name("dlq-nowhere")
    with pytest.raises(LookupError, match=f"{missing}.*create the source topic first"):
        ensure_dead_letter_topics([missing], bootstrap, timeout=1.0)
