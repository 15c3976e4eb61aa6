"""A local SNS/SQS server for ``run`` and the tests: moto's standalone server, started like the broker.

moto (``moto[server]`` from PyPI) speaks the SNS and SQS APIs, including an SNS topic
delivering to a subscribed SQS queue (wrapped in SNS's notification envelope, or raw), so
a service publishes and a bridge reads exactly as in AWS. The server is a child process
on a free loopback port, killed with its parent (no stray server after a crashed run).

:func:`subscribed_queue` makes what a service team's infrastructure would: a topic, a
queue and the subscription between them.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from dataplatform.kafka.process import free_port, set_parent_death_signal

READY_TIMEOUT_S = 60.0


class LocalAwsError(RuntimeError):
    """The local SNS/SQS server did not start; the message has its log's tail."""


class LocalAws:
    """One moto server process on ``127.0.0.1``; ``url`` is its endpoint."""

    def __init__(self, log_file: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = log_file
        self._process: subprocess.Popen | None = None

    def start(self) -> "LocalAws":
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, preexec_fn=set_parent_death_signal)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise LocalAwsError(f"the SNS/SQS server exited with {self._process.returncode}:\n{self._tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/moto-api/data.json", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise LocalAwsError(f"the SNS/SQS server did not answer on {self.url} within {READY_TIMEOUT_S}s:\n{self._tail()}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        self._process = None

    def _tail(self) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> "LocalAws":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def local_aws(log_file: Path) -> Iterator[str]:
    """The endpoint URL of a local SNS/SQS server for the duration of the block."""
    with LocalAws(log_file) as server:
        yield server.url


def subscribed_queue(sns: Any, sqs: Any, topic: str, queue: str, *, raw: bool = False,
                     visibility_timeout: int = 30) -> tuple[str, str]:
    """``(topic ARN, queue URL)``: the topic and queue made if missing, the queue subscribed
    to the topic (``raw``: raw message delivery, no SNS envelope). Idempotent, as AWS's calls are."""
    topic_arn = sns.create_topic(Name=topic)["TopicArn"]
    url = sqs.create_queue(QueueName=queue, Attributes={"VisibilityTimeout": str(visibility_timeout)})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"RawMessageDelivery": "true"} if raw else {}
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return topic_arn, url
