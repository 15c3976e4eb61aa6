"""One processor worker, in this process: ``python -m dataplatform.stream_processors.deployment.worker``.

``run_worker`` blocks until SIGTERM/SIGINT (the engine's worker stops gracefully: finishes
the batch in hand, commits offsets, flushes the producer). The configuration comes from the
environment (:data:`CONFIG_ENV`, set by :mod:`.pool`, which starts and supervises N of
these processes).
"""

from __future__ import annotations

import argparse
import logging
import os

from dataplatform.config import Settings
from dataplatform.crash_points import arm_from_environment
from dataplatform.stream_processors.config import CONFIG_ENV, ProcessorConfig
from dataplatform.stream_processors.core.clock import Clock
from dataplatform.stream_processors.deployment.topic_layout import ensure_topics, seed_group_offsets
from dataplatform.stream_processors.engine.app import run
from dataplatform.stream_processors.engine.topology import build_app


def run_worker(settings: Settings | None = None, config: ProcessorConfig | None = None,
               clock: Clock | None = None) -> None:
    """Run one processor worker in this process (main thread) until it is signalled to stop."""
    config = (config or ProcessorConfig()).resolved(settings)
    arm_from_environment()
    ensure_topics(config, settings)
    seed_group_offsets(config, settings)
    run(build_app(config, clock, settings=settings).app, config.loglevel)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One supply/demand processor worker (config from the environment).")
    parser.parse_args(argv)
    text = os.environ.get(CONFIG_ENV)
    config = ProcessorConfig.from_json(text) if text else ProcessorConfig()
    logging.basicConfig(level=config.loglevel, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_worker(config=config)


if __name__ == "__main__":
    main()
