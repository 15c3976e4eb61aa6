"""Where a long-running command's log lines go when the terminal is for people.

``dataplatform run`` prints a few lines of its own (where things are, each warning);
everything else (the platform's modules, uvicorn, librdkafka's client lines routed through
:data:`dataplatform.kafka_config.KAFKA_CLIENT_LOG`) goes to one log file instead.
"""

from __future__ import annotations

import logging
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_to_file(path: Path, level: int = logging.INFO) -> Path:
    """Send every log record of this process to ``path`` (appending) and none to the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return path
