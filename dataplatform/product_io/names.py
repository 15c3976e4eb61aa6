"""Names that follow from a topic's: the only place they are spelled out, so that the
producer, the processor, the sinks, the registry checks and the metrics agree."""

from __future__ import annotations

DEAD_LETTER_SUFFIX = ".dlq"


def value_subject(topic: str) -> str:
    """Confluent's TopicNameStrategy subject for the topic's values."""
    return f"{topic}-value"


def dead_letter_topic(topic: str) -> str:
    """Where records of ``topic`` that cannot be decoded or mapped are copied, with headers."""
    return f"{topic}{DEAD_LETTER_SUFFIX}"
