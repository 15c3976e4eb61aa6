"""The Faust floor: what a stateless Faust agent costs per event, for the processor benchmark.

    python -m bench.faust_floor --bootstrap HOST:PORT --registry URL --events N --out FILE TOPIC...

One Faust agent per input topic reads the topic from the start with the processor's own
Avro codec (confluent-kafka's deserializer through the registry), in batches like the
processor (``take_events``), and sends one small JSON record per event: the processor's
consume-decode-produce path with no tables, no repartition and no rules. When N events
went through it writes ``{"events_per_s": ..., "cpu_s_per_event": ...}`` (its CPU time,
all threads, from the first event) to FILE and stops. A separate process,
because a Faust worker owns its event loop and signal handlers.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import time
import uuid

import faust
from confluent_kafka.admin import AdminClient

from bench.baselines import step_output
from dataplatform.product_io.serialization import registry_client
from dataplatform.topics import TopicSpec, create_missing
from dataplatform.products.product import load_products
from dataplatform.stream_processors.engine.codec import AvroEventCodec
from dataplatform.stream_processors.config import ProcessorConfig
from dataplatform.stream_processors.engine.faust_patches.transport import broker_url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--events", type=int, required=True, help="stop after this many events")
    parser.add_argument("--out", required=True, help="JSON result file")
    parser.add_argument("--batch-size", type=int, default=ProcessorConfig.batch_size)
    parser.add_argument("--batch-seconds", type=float, default=ProcessorConfig.batch_seconds)
    parser.add_argument("topics", nargs="+", help="TOPIC=PRODUCT pairs")
    args = parser.parse_args(argv)

    products, client = load_products(), registry_client(args.registry)
    app = faust.App(f"bench-faust-floor-{uuid.uuid4().hex[:8]}", broker=broker_url(args.bootstrap),
                    store="memory://", web_enabled=False, consumer_auto_offset_reset="earliest",
                    producer_acks=-1, datadir=tempfile.mkdtemp(prefix="faust-floor-"))
    out = app.topic(f"{app.conf.id}-out", key_serializer="raw", value_serializer="raw")
    create_missing(AdminClient({"bootstrap.servers": args.bootstrap}), [TopicSpec(out.get_topic_name(), 4)])
    seen = {"n": 0, "started": 0.0, "cpu": 0.0}

    def agent_for(topic: str, product: str):
        codec = AvroEventCodec(products[product], client, topic)
        codec.warm()

        async def agent(stream: faust.Stream) -> None:
            async for events in stream.take_events(args.batch_size, within=args.batch_seconds):
                if not seen["started"]:
                    seen["started"], seen["cpu"] = time.perf_counter(), time.process_time()
                for event in events:
                    await out.send(key=event.message.key, value=step_output(event.value))
                seen["n"] += len(events)
                if seen["n"] >= args.events:
                    elapsed = time.perf_counter() - seen["started"]
                    with open(args.out, "w") as f:
                        json.dump({"events": seen["n"], "events_per_s": seen["n"] / elapsed,
                                   "cpu_s_per_event": (time.process_time() - seen["cpu"]) / seen["n"]}, f)
                    os.kill(os.getpid(), signal.SIGTERM)

        agent.__name__ = f"floor_{product}"
        return app.topic(topic, key_serializer="raw", value_serializer=codec), agent

    for pair in args.topics:
        topic, product = pair.split("=", 1)
        source, agent = agent_for(topic, product)
        app.agent(source, name=f"floor-{product}")(agent)
    faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main()
