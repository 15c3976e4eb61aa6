"""What every long-running command (a sink, the outbox relay, a bridge) does before its
loop: stop cleanly on Ctrl-C or SIGTERM, and serve its own ``/metrics`` when asked."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

import typer

from dataplatform.config import Settings


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM: the loop finishes what it holds and returns."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def serve_metrics_or_exit(port: int, settings: Settings, before_exit: Callable[[], None] | None = None) -> str:
    """Serve this process's metrics on ``port`` (see :mod:`dataplatform.web.metrics_port`);
    the start-up line's words for it. A port that cannot be bound is an error: exit 1,
    after ``before_exit`` (what the command had opened)."""
    from dataplatform.web.metrics_port import access_note, serve_metrics

    try:
        serve_metrics(port, settings)
    except OSError as exc:
        if before_exit is not None:
            before_exit()
        typer.secho(f"error: cannot serve metrics on port {port}: {exc}", err=True, fg="red")
        raise typer.Exit(1) from None
    return f"metrics on http://0.0.0.0:{port}/metrics ({access_note(settings)})"
