"""``dataplatform run``: the platform's main job, end to end, on this machine."""

from __future__ import annotations

import queue
import signal
import threading

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from dataplatform.config import get_settings
from dataplatform.platform import DEFAULT_COURT_SCENARIO, DEFAULT_SCENARIO, Platform, RunOptions, wait_for

STYLES = {"RED": "bold red", "AMBER": "bold yellow", "NONE": "bold green"}


def run(
    fresh: bool = typer.Option(False, "--fresh", help="Start over: delete DATAPLATFORM_HOME's state first."),
    duration: float = typer.Option(None, "--duration", help="Stop by itself after this many seconds."),
    scenario: str = typer.Option(DEFAULT_SCENARIO, "--scenario",
                                 help="What the housing and releases simulators play ('' for ordinary activity)."),
    court_scenario: str = typer.Option(DEFAULT_COURT_SCENARIO, "--court-scenario",
                                       help="What the hearings and bookings simulators play ('' for ordinary activity)."),
    seed: int = typer.Option(7, "--seed", help="Seed of the simulators (same seed, same events)."),
    rate: float = typer.Option(5.0, "--rate", help="Changes per second per simulated service."),
    web_port: int = typer.Option(8080, "--web-port", help="Port of the web page (another free one if taken)."),
    workers: int = typer.Option(1, "--workers", help="Stream processor workers (each its own process)."),
) -> None:
    """Bring up the whole platform and show a housing shortage and an interpreter shortage being detected.

    Starts Kafka (embedded unless KAFKA_BOOTSTRAP_SERVERS is set), the web service
    (registry, catalogue, live warnings), a stream processor per derivation spec, the SQL
    and Parquet sinks and the four service simulators; prints each warning as it is raised
    or cleared.
    Ctrl-C stops everything cleanly; a second run resumes where this one stopped.
    Log lines (the platform's, the web server's, the Kafka clients') go to
    DATAPLATFORM_HOME/logs/dataplatform.log, not the terminal.
    """
    console = Console(highlight=False, soft_wrap=True)
    settings = get_settings()
    options = RunOptions(fresh=fresh, scenario=scenario or None, court_scenario=court_scenario or None, seed=seed, rate=rate, web_port=web_port,
                         workers=workers, log_to_file=True)
    platform = Platform(settings, options, say=lambda line: console.print(line, markup=False))
    interrupted = threading.Event()
    # Ctrl-C and SIGTERM both mean "stop cleanly"; set explicitly so it also works when the
    # shell started us with SIGINT ignored (a background job).
    previous = {sig: signal.signal(sig, lambda *_: interrupted.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        platform.start()
    except Exception as exc:
        console.print(f"[red]error:[/red] could not start the platform: {exc}")
        raise typer.Exit(1)
    console.print(f"\nRunning{f' for {duration:.0f}s' if duration else ''}. Open {platform.web_url}/warnings "
                  f"to watch the warnings live. Press Ctrl-C to stop.\n")
    status = Text()

    def tick() -> None:
        while True:
            try:
                w = platform.transitions.get_nowait()
            except queue.Empty:
                break
            live.console.print(Text(w["message"], style=STYLES.get(w["severity"], "")))
        c = platform.counters
        state = "simulators finished" if c.simulators_done >= c.simulators else "simulating"
        processor = "" if platform.processor_alive() else "  [processor stopped: see its log]"
        status.plain = (f"housing changes {c.housing_changes}  release changes {c.release_changes}  "
                        f"hearings {c.hearing_changes}  bookings {c.booking_changes}  "
                        f"warning transitions {c.transitions}  ({state}){processor}")

    try:
        with Live(status, console=console, refresh_per_second=4, transient=True) as live:
            wait_for(platform, duration, tick, interrupted)
    except KeyboardInterrupt:
        pass
    finally:
        console.print("Stopping: simulators, processor, sinks, web service, Kafka...")
        platform.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print(f"Stopped. State kept in {platform.home} (run again to resume, --fresh to start over).")
