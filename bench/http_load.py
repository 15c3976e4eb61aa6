"""A light HTTP/1.1 load generator: N keep-alive connections asking for one path in a loop.

Written on asyncio's streams rather than an HTTP client library so that the generator costs
as little as possible per request on a busy two-core host (a full client such as httpx costs
more per request than a small route does to serve). It reads only what it needs: the status
line, ``Content-Length`` and the body.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit


async def _client(host: str, port: int, path: str, until: float, latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: */*\r\n\r\n".encode()
    try:
        while time.monotonic() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status >= 400:
                errors.append(status)
    finally:
        writer.close()


async def hammer(base_url: str, path: str, clients: int, seconds: float) -> dict:
    """``clients`` connections asking for ``path`` for ``seconds``: requests/s, p50 and p99 (ms), errors."""
    url = urlsplit(base_url)
    latencies: list[float] = []
    errors: list[int] = []
    started = time.monotonic()
    await asyncio.gather(*(_client(url.hostname, url.port, path, started + seconds, latencies, errors)
                           for _ in range(clients)))
    elapsed = time.monotonic() - started
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2) if latencies else 0.0

    return {"requests": len(latencies), "requests_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "errors": len(errors)}
