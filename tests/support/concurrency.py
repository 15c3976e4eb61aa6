"""Run one call from several threads at once, released together by a barrier."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def run_together(call: Callable[[], T], threads: int = 8, timeout: float = 30.0) -> tuple[list[T], list[BaseException]]:
    """(results, errors) of ``call`` run by ``threads`` threads started at the same moment."""
    barrier = threading.Barrier(threads)
    results: list[T] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait(10)
            results.append(call())
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    started = [threading.Thread(target=worker) for _ in range(threads)]
    for t in started:
        t.start()
    for t in started:
        t.join(timeout)
    return results, errors
