"""A daemon thread that runs one reader until asked to stop, for the service's background
work (following a topic, reading heartbeats, sampling Kafka for metrics)."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class BackgroundReader:
    """Subclasses set :attr:`thread_name`, implement :meth:`run` (checking ``self._stop``)
    and call ``super().__init__()``; :meth:`start` and :meth:`stop` are shared."""

    thread_name = "background"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        raise NotImplementedError

    def start(self):  # noqa: ANN201 - returns self, typed by the subclass
        def guarded() -> None:
            try:
                self.run()
            except Exception:
                log.exception("%s stopped", self.thread_name)
        self._thread = threading.Thread(target=guarded, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=15)
