"""Waiting out a store that is down, for as long as the sink is not asked to stop.

A sink's store (a database, a file system) can be unreachable or locked for a while; the
sink then waits with exponential backoff instead of crashing, since nothing is lost by
waiting (the records stay in Kafka). A stop request ends the wait at once with
:class:`SinkStopped`, so that shutting down never hangs on a dead database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential

log = logging.getLogger(__name__)
T = TypeVar("T")


class SinkStopped(RuntimeError):
    """Raised inside a retry loop when the sink was asked to stop before the write succeeded."""


def retry_until_stopped(fn: Callable[[], T], is_transient: Callable[[BaseException], bool],
                        stop: threading.Event) -> T | None:
    """Call ``fn`` until it succeeds, backing off on transient errors, until ``stop`` is set."""
    def log_wait(state: RetryCallState) -> None:
        log.warning("%s failed (%s); retrying in %.1fs", getattr(fn, "__name__", "write"),
                    state.outcome.exception() if state.outcome else "?", state.next_action.sleep if state.next_action else 0)

    def stop_when_asked(_state: RetryCallState) -> bool:
        if stop.is_set():
            raise SinkStopped("sink stopped while waiting for the store")
        return False

    for attempt in Retrying(retry=retry_if_exception(is_transient), stop=stop_when_asked,
                            wait=wait_exponential(multiplier=0.1, max=5.0), sleep=stop.wait,
                            before_sleep=log_wait, reraise=True):
        with attempt:
            return fn()
    return None
