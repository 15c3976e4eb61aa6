"""Wait on a condition with a deadline instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import httpx

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 30.0, interval: float = 0.1,
               message: str = "condition") -> T:
    """Call ``condition`` until it returns a truthy value; fail with ``message`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last value: {last!r})")


def wait_for_registry(url: str, timeout: float = 30.0, interval: float = 0.1) -> None:
    """Return once ``GET {url}/subjects`` answers 200 (a registry given by SCHEMA_REGISTRY_URL
    may still be starting); raise ``TimeoutError`` at the deadline, with the last answer."""
    deadline = time.monotonic() + timeout
    last: str = "no attempt"
    while True:
        try:
            response = httpx.get(f"{url.rstrip('/')}/subjects", timeout=max(0.5, min(5.0, timeout)))
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise TimeoutError(f"schema registry at {url} did not answer within {timeout}s ({last})")
        time.sleep(interval)
