"""``dataplatform simulate housing|releases|hearings|bookings``: run a simulated service against Kafka."""

from __future__ import annotations

import importlib
import json
import signal
import threading
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dataplatform.config import get_settings
from dataplatform.producers.simulators.scenarios import DEFAULT_RATE, SCENARIOS, SimulationReport, scenario_plan

app = typer.Typer(help="Run a simulated service that publishes change events (housing units, release cases, "
                       "court hearings or interpreter bookings).",
                  no_args_is_help=True)

RATE = typer.Option(DEFAULT_RATE, "--rate", min=0.01, help="Business changes per second.")
COUNT = typer.Option(None, "--count", min=1, help="Stop after this many changes.")
DURATION = typer.Option(None, "--duration", min=0.1, help="Stop after this many seconds.")
SEED = typer.Option(1, "--seed", help="Seed of the simulation: the same seed gives the same changes.")
SCENARIO = typer.Option(None, "--scenario",
                        help=f"A scripted scenario instead of ordinary activity: {', '.join(sorted(SCENARIOS))}. "
                             "Run both simulators of the scenario (housing and releases for shortage-north-west, "
                             "hearings and bookings for interpreter-shortage) with the same scenario and seed.")
TOPIC = typer.Option(None, "--topic", help="Publish to this topic instead of the product's own (for tests, demos).")
JSON_OUT = typer.Option(False, "--json", help="Print the summary as JSON.")


def _run(name: str, runner, json_out: bool, **kwargs) -> None:  # noqa: ANN001
    """Run ``runner`` with a progress bar, stopping cleanly on Ctrl-C or SIGTERM."""
    if kwargs.get("scenario") and kwargs["scenario"] not in SCENARIOS:
        typer.secho(f"error: no scenario named {kwargs['scenario']!r}; known: {', '.join(sorted(SCENARIOS))}",
                    err=True, fg="red")
        raise typer.Exit(2)
    if kwargs.get("scenario"):
        plan = scenario_plan(kwargs["scenario"], seed=kwargs.get("seed", 1))
        if name not in plan.services:
            typer.secho(f"error: scenario {plan.name!r} has no steps for the {name} simulator; it runs "
                        f"{' and '.join(plan.services)}", err=True, fg="red")
            raise typer.Exit(2)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    columns = [SpinnerColumn(), TextColumn(f"[bold]{name}[/] changes"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    with Progress(*columns, transient=json_out, disable=json_out) as bar:
        task = bar.add_task(name, total=kwargs.get("count"))

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        try:
            report: SimulationReport = runner(get_settings(), stop_event=stop, progress=progress, **kwargs)
        except KeyboardInterrupt:
            stop.set()
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - one clear line, not a traceback
            typer.secho(f"error: the {name} simulator stopped: {exc}", err=True, fg="red")
            raise typer.Exit(1) from None
    if json_out:
        typer.echo(json.dumps(report.__dict__))
    else:
        typer.echo(f"{report.service}: {report.changes} changes, {report.published} events published "
                   f"in {report.seconds:.1f}s")
    if report.unsent:
        typer.secho(f"error: {report.unsent} outbox events are still unsent; run again to relay them",
                    err=True, fg="red")
        raise typer.Exit(1)


@app.command("housing")
def housing(rate: float = RATE, count: int = COUNT, duration: float = DURATION, seed: int = SEED,
            scenario: str = SCENARIO, topic: str = TOPIC, json_out: bool = JSON_OUT,
            database: Path = typer.Option(None, "--database",
                                          help="The housing service's SQLite file (default: "
                                               "$DATAPLATFORM_HOME/housing.db)."),
            ) -> None:
    """Simulate the housing service: units become available, are reserved, let, go void.

    Changes go to its own SQLite database and the outbox in one transaction; a relay
    publishes them to the social_housing_availability product.
    """
    from dataplatform.producers.simulators.housing import run_housing_simulator

    _run("housing", run_housing_simulator, json_out, seed=seed, rate=rate, count=count, duration=duration,
         scenario=scenario, database=database, topic=topic)


def _publishing_simulator(name: str, product: str, what: str) -> None:
    """Register ``simulate <name>``: a service that publishes each change with the SDK
    (``run_<name>_simulator`` in ``producers/simulators/<name>.py``, imported when run)."""
    def command(rate: float = RATE, count: int = COUNT, duration: float = DURATION, seed: int = SEED,
                scenario: str = SCENARIO, topic: str = TOPIC, json_out: bool = JSON_OUT) -> None:
        module = importlib.import_module(f"dataplatform.producers.simulators.{name}")
        _run(name, getattr(module, f"run_{name}_simulator"), json_out, seed=seed, rate=rate, count=count,
             duration=duration, scenario=scenario, topic=topic)

    command.__doc__ = f"""Simulate {what}.

    Each change is published directly to the {product} product.
    """
    app.command(name)(command)


_publishing_simulator("releases", "prison_releases_housing_need",
                      "release planning: cases are scheduled, rescheduled, released, housed, cancelled")
_publishing_simulator("hearings", "court_hearings_interpreter_need",
                      "court listing: hearings are listed (some needing an interpreter), relisted, adjourned, heard, "
                      "vacated")
_publishing_simulator("bookings", "interpreter_bookings",
                      "interpreter booking: interpreters are booked for a court, date and language, cancelled, "
                      "fulfilled")
