"""Every bridge on a local SNS/SQS server, as ``dataplatform run`` uses them.

In AWS the service team's infrastructure subscribes the bridge's queue to the topic; on one
machine this does it (idempotently), then makes each bridge's runner. Returns them with the
topic ARN each reads, so that a simulated service knows where to publish.
"""

from __future__ import annotations

from pathlib import Path

from dataplatform.aws import aws_client
from dataplatform.aws_local import subscribed_queue
from dataplatform.bridges.loading import load_bridges
from dataplatform.config import Settings
from dataplatform.producers.bridges.runner import BridgeRunner


def local_bridges(settings: Settings, status_dir: Path, wait_seconds: int = 1) -> list[tuple[BridgeRunner, str]]:
    """``(runner, topic ARN)`` of every bridge spec, its queue subscribed to its topic."""
    sns, sqs = aws_client("sns", settings), aws_client("sqs", settings)
    out = []
    for bridge in load_bridges().values():
        topic_arn, _ = subscribed_queue(sns, sqs, bridge.topic or f"{bridge.name}-events", bridge.queue)
        out.append((BridgeRunner(bridge, settings, wait_seconds=wait_seconds, status_dir=status_dir), topic_arn))
    return out
