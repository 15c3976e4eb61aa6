"""Waiting for a schema registry to answer; talking to it is confluent-kafka's job.

Everything else (registering, fetching, serialising) goes through confluent-kafka's
``SchemaRegistryClient`` so the platform exercises the same client its users run.
"""

from __future__ import annotations

import time

import httpx


def wait_for_registry(url: str, timeout: float = 30.0, interval: float = 0.1) -> None:
    """Return once ``GET {url}/subjects`` answers 200; raise ``TimeoutError`` at the deadline."""
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
