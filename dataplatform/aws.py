"""SNS and SQS clients for the bridges, configured the way AWS users expect.

In AWS nothing is set here: boto3 finds the region and credentials itself (environment,
profile, the pod's IAM role through web identity). ``AWS_ENDPOINT_URL`` points the clients
at another SNS/SQS-speaking server (the local one ``run`` and the tests start, see
:mod:`dataplatform.aws_local`); such a server takes any credentials, so when boto3 finds
none, placeholder ones are used rather than failing.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from dataplatform.config import Settings, get_settings

DEFAULT_REGION = "eu-west-2"   # London, where the ministry's services run
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


def aws_client(service: str, settings: Settings | None = None, *, endpoint_url: str | None = None,
               read_timeout: float = 30.0) -> Any:
    """A boto3 client of ``service`` ("sqs", "sns"): region and credentials as boto3 finds
    them, the endpoint from ``endpoint_url`` or ``AWS_ENDPOINT_URL``."""
    settings = settings or get_settings()
    endpoint = endpoint_url or settings.aws_endpoint_url
    session = boto3.session.Session()
    region = settings.aws_region or session.region_name or DEFAULT_REGION
    extra = LOCAL_CREDENTIALS if endpoint and session.get_credentials() is None else {}
    # read_timeout beyond SQS's longest long poll (20 s); retries in standard mode with backoff
    config = Config(read_timeout=read_timeout, connect_timeout=5, retries={"mode": "standard", "max_attempts": 5})
    return session.client(service, region_name=region, endpoint_url=endpoint, config=config, **extra)


def queue_url(sqs: Any, queue: str) -> str:
    """The URL of ``queue`` (a URL is returned as it is; a name is looked up)."""
    if queue.startswith(("https://", "http://")):
        return queue
    return sqs.get_queue_url(QueueName=queue)["QueueUrl"]
