"""The processor benchmark's baselines, over the same events as the processor: a bare
aiokafka consume-decode-produce loop, and the same step as a stateless Faust agent."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient

from bench.processor_run import Run
from dataplatform.topics import TopicSpec, create_missing
from tests.support.entities import HOUSING, RELEASES

def step_output(record: dict) -> bytes:
    """What the baselines produce per decoded event (the bare loop and the Faust floor alike)."""
    return json.dumps({"area": record["after"]["local_authority_code"], "op": record["op"]}).encode()


def baseline(bootstrap: str, registry: str, run: Run, n: int, passes: int = 3) -> float:
    """Bare aiokafka: consume the run's input topics, decode, produce one JSON per event.

    The median of ``passes`` passes, each with its own consumer group: one pass drains the
    topics in about a second, short enough for a neighbour's burst on a shared host to
    move it by half.
    """
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topics = {run.config.topic(p): p for p in (HOUSING, RELEASES)}
    out_topic = run.config.topic_prefix + "baseline-out"
    create_missing(AdminClient({"bootstrap.servers": bootstrap}), [TopicSpec(out_topic, run.config.partitions)])

    async def loop() -> float:
        consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=f"bench-base-{uuid.uuid4().hex}",
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await consumer.start()
        await producer.start()
        seen, started = 0, None
        try:
            while seen < n:
                batches = await consumer.getmany(timeout_ms=500, max_records=2000)
                for tp, records in batches.items():
                    for r in records:
                        started = started or time.perf_counter()
                        record = run.serdes[topics[tp.topic]].deserialize_value(r.value, tp.topic)
                        await producer.send(out_topic, step_output(record), key=r.key)
                        seen += 1
            await producer.flush()
            await consumer.commit()
            return seen / (time.perf_counter() - started)
        finally:
            await consumer.stop()
            await producer.stop()

    return statistics.median([asyncio.run(loop()) for _ in range(passes)])


def faust_floor(bootstrap: str, registry: str, run: Run, n: int, tmp: Path) -> tuple[float, float]:
    """A stateless Faust agent doing the baseline's work on the same topics: (events/s, its
    CPU seconds per event)."""
    out = tmp / f"faust-floor-{uuid.uuid4().hex[:6]}.json"
    topics = [f"{run.config.topic(p)}={p}" for p in (HOUSING, RELEASES)]
    subprocess.run([sys.executable, "-m", "bench.faust_floor", "--bootstrap", bootstrap, "--registry", registry,
                    "--events", str(n), "--out", str(out), *topics], check=True, timeout=600,
                   stdout=subprocess.DEVNULL)
    result = json.loads(out.read_text())
    return result["events_per_s"], result["cpu_s_per_event"]
