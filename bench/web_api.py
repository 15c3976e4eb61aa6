"""The web service under load while the platform runs, against a bare Starlette route.

    .venv/bin/python -m bench.web_api [--clients 20] [--seconds 10] [--passes 3] [--product NAME]

Starts ``dataplatform run --fresh`` (its own embedded Kafka, web service, processors, sinks
and simulators, in a temporary DATAPLATFORM_HOME) and waits until ``/api/warnings`` lists
warnings. Then, for each pass, ``--clients`` concurrent keep-alive clients (one asyncio
connection each, :mod:`bench.http_load`, in this process) ask for one route as fast as they
are answered for ``--seconds``: ``/api/warnings``, a catalogue product page, and the
baseline, a bare Starlette app in its own process under the same uvicorn answering with the
very bytes ``/api/warnings`` last answered (no middleware, no database, no templates). The
ratio to the baseline is the web service's own cost, whatever the load generator and the
busy host cost both. Requests/s and latency p50/p99 (every request of the pass) per route,
the median over passes, with the host's load average; writes bench/results/web_api.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from bench.common import load_average, machine, write_results
from bench.http_load import hammer
from tests.support.waiting import wait_until

RESULTS = Path(__file__).resolve().parent / "results" / "web_api.json"
TARGET = {"p99_ms": 200.0, "requests_per_s": 300.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_baseline(body_file: str, port: int) -> None:
    """The baseline server (run in its own process): the same bytes, from a bare Starlette route."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    body = Path(body_file).read_bytes()

    async def same_bytes(request) -> Response:
        return Response(body, media_type="application/json")

    uvicorn.run(Starlette(routes=[Route("/", same_bytes)]), host="127.0.0.1", port=port, log_level="warning")


def start_platform(tmp: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "DATAPLATFORM_HOME": str(tmp / "home")}
    log = (tmp / "run.out").open("wb")   # not under the home: --fresh empties it
    return subprocess.Popen([sys.executable, "-m", "dataplatform.cli", "run", "--fresh", "--web-port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--product", default="housing_shortfall_warnings", help="whose catalogue page to ask for")
    ap.add_argument("--serve-baseline", nargs=2, metavar=("BODY_FILE", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_baseline:
        return serve_baseline(args.serve_baseline[0], int(args.serve_baseline[1]))
    console = Console()
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        home, port, base_port = Path(tmp), free_port(), free_port()
        platform = start_platform(home, port)
        baseline = None
        try:
            url = f"http://127.0.0.1:{port}"
            console.print(f"waiting for the platform's first warnings at {url}/api/warnings …")
            wait_until(lambda: _warnings(url, platform), timeout=300, interval=2,
                       message="the platform lists no warnings")
            body = httpx.get(f"{url}/api/warnings").content
            (home / "body.json").write_bytes(body)
            baseline = subprocess.Popen([sys.executable, "-m", "bench.web_api", "--serve-baseline",
                                         str(home / "body.json"), str(base_port)])
            base_url = f"http://127.0.0.1:{base_port}"
            wait_until(lambda: _answers(base_url + "/"), timeout=30, message="the baseline server does not answer")
            routes = {"/api/warnings": (url, "/api/warnings"),
                      f"/catalogue/{args.product}": (url, f"/catalogue/{args.product}"),
                      "baseline (bare Starlette, same bytes)": (base_url, "/")}
            load_before = load_average()
            passes: dict[str, list[dict]] = {name: [] for name in routes}
            for _ in range(args.passes):
                for name, (host, path) in routes.items():
                    passes[name].append(asyncio.run(hammer(host, path, args.clients, args.seconds)))
            load_after = load_average()
        finally:
            for proc in (baseline, platform):
                if proc is not None:
                    proc.terminate()
                    proc.wait(60)
    result = {"clients": args.clients, "seconds": args.seconds, "passes": args.passes, "body_bytes": len(body),
              "target": TARGET, "load_average_before": load_before, "load_average_after": load_after,
              "machine": machine(), "routes": {}}
    base_rps = statistics.median(p["requests_per_s"] for p in passes["baseline (bare Starlette, same bytes)"])
    table = Table(title=f"{args.clients} clients, {args.seconds:g} s a pass, median of {args.passes} passes, "
                        f"while the platform runs (load {load_before[0]} → {load_after[0]})")
    for col in ("route", "requests/s", "p50 ms", "p99 ms", "errors", "of baseline"):
        table.add_column(col, justify="left" if col == "route" else "right")
    for name, runs in passes.items():
        median = {k: statistics.median(p[k] for p in runs) for k in ("requests_per_s", "p50_ms", "p99_ms")}
        errors = sum(p["errors"] for p in runs)
        result["routes"][name] = {**median, "errors": errors, "passes": runs,
                                  "of_baseline": round(median["requests_per_s"] / base_rps, 3)}
        table.add_row(name, f"{median['requests_per_s']:.0f}", f"{median['p50_ms']:.1f}", f"{median['p99_ms']:.1f}",
                      str(errors), f"{median['requests_per_s'] / base_rps:.0%}")
    console.print(table)
    write_results(RESULTS, result, console)


def _warnings(url: str, platform: subprocess.Popen) -> bool:
    if platform.poll() is not None:
        raise SystemExit(f"dataplatform run stopped (exit {platform.returncode}): see its output above")
    try:
        return bool(httpx.get(f"{url}/api/warnings", timeout=5).json())
    except (httpx.HTTPError, ValueError):
        return False


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
