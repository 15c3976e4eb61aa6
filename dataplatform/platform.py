"""The whole platform on one machine: what ``dataplatform run`` (and ``make run``) starts.

Order matters and is the order a reader would expect: Kafka, the web service (registry,
catalogue, warnings), every product registered and its topic created, the stream processor
of every derivation spec, the sinks, a local SNS/SQS server and the bridges, then the
simulators (housing; releases, as HMPPS domain events to SNS for its bridge; court
hearings; interpreter bookings). Everything started here is stopped here, in reverse, so no
Java or Python process outlives the run. State lives in ``DATAPLATFORM_HOME``, so a second
run resumes where the first stopped (``fresh`` wipes it). Keeping the started parts alive is
:mod:`dataplatform.supervisor`'s job. ``KAFKA_BOOTSTRAP_SERVERS``, ``SCHEMA_REGISTRY_URL``,
``DATABASE_URL`` or ``AWS_ENDPOINT_URL``, when set, replace the embedded broker, the
platform's registry, SQLite and the local SNS/SQS server.
"""
from __future__ import annotations

import contextlib
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dataplatform.config import Settings, shown_url
from dataplatform.heartbeat import ensure_heartbeat_topic
from dataplatform.kafka.process import port_open
from dataplatform.kafka.provider import kafka_bootstrap
from dataplatform.registry_config import redacted_url
from dataplatform.product_io.dead_letters import ensure_dead_letter_topics
from dataplatform.product_io.serialization import ProductSerde, registry_client
from dataplatform.supervisor import Supervisor
from dataplatform.topics import ensure_product_topics
from dataplatform.products.product import load_products

DEFAULT_SCENARIO = "shortage-north-west"
DEFAULT_COURT_SCENARIO = "interpreter-shortage"
SQL_SINK_GROUP = "dataplatform-sink-sql"
PARQUET_SINK_GROUP = "dataplatform-sink-parquet"
ICEBERG_SINK_GROUP = "dataplatform-sink-iceberg"
ICEBERG_COMMIT_SECONDS = 60.0   # analysts see the run's tables within a minute, files still of a useful size


@dataclass
class RunOptions:
    fresh: bool = False
    scenario: str | None = DEFAULT_SCENARIO               # what the housing and releases simulators play
    court_scenario: str | None = DEFAULT_COURT_SCENARIO   # what the hearings and bookings simulators play
    seed: int = 7
    rate: float = 5.0
    web_port: int = 8080
    workers: int = 1
    tick_seconds: float = 5.0
    log_to_file: bool = False  # every log line (ours, uvicorn's, librdkafka's) to home/logs, none on the terminal


@dataclass
class Counters:
    """Live figures for the progress line."""
    housing_changes: int = 0
    release_changes: int = 0
    hearing_changes: int = 0
    booking_changes: int = 0
    transitions: int = 0
    simulators_done: int = 0
    simulators: int = 0   # how many were started
    extra: dict = field(default_factory=dict)


class Platform:
    """Start, watch and stop every part of the platform."""

    def __init__(self, settings: Settings, options: RunOptions, say: Callable[[str], None] = print) -> None:
        self.options, self.say = options, say
        self.home = settings.dataplatform_home.resolve()
        self.settings = settings.model_copy(update={"dataplatform_home": self.home})
        self.counters = Counters()
        self.transitions: queue.Queue = queue.Queue()
        self._stop_simulators = threading.Event()
        self._stop_sinks = threading.Event()
        self._stop_bridges = threading.Event()
        self._domain_events_topic: str | None = None   # the SNS topic the releases service publishes to
        self.supervisor = Supervisor(say)
        self._resources = contextlib.ExitStack()  # what must stop last: Kafka
        self._server = None
        self._app = None
        self._sinks: list = []
        self._stopped = False

    # -- where things are --------------------------------------------------------------
    @property
    def analytics_url(self) -> str:
        return self.settings.database_url or f"sqlite:///{self.home / 'analytics.db'}"

    @property
    def parquet_path(self) -> Path:
        return self.home / "parquet"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "dataplatform.log"

    @property
    def web_url(self) -> str:
        return self._server.url if self._server else ""

    # -- start ---------------------------------------------------------------------------
    def start(self) -> None:
        if self.options.fresh:
            shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True, exist_ok=True)
        if self.options.log_to_file:
            from dataplatform.logs import log_to_file

            self.say(f"Logs            {log_to_file(self.log_file)}")
        try:
            self._start_kafka()
            self._start_web()
            self._register_products()
            self._start_warnings()
            self._start_processor()
            self._start_sinks()
            self._start_bridges()
            self._start_simulators()
        except BaseException:
            self.stop()
            raise

    def _start_kafka(self) -> None:
        external = self.settings.kafka_bootstrap_servers
        bootstrap = self._resources.enter_context(kafka_bootstrap(settings=self.settings))
        self.settings = self.settings.model_copy(update={"kafka_bootstrap_servers": bootstrap})
        where = "existing cluster" if external else f"data in {self.settings.kafka_data_dir}"
        self.say(f"Kafka           {bootstrap} ({where})")

    def _start_bridges(self) -> None:
        """A local SNS/SQS server (unless AWS_ENDPOINT_URL is set), then every bridge on it."""
        from dataplatform.aws_local import LocalAws
        from dataplatform.producers.bridges.local import local_bridges

        if not self.settings.aws_endpoint_url:
            url = self._resources.enter_context(LocalAws(self.home / "aws" / "moto.log")).url
            self.settings = self.settings.model_copy(update={"aws_endpoint_url": url})
            self.say(f"SNS/SQS         {url} (moto, local)")
        for runner, topic_arn in local_bridges(self.settings, self.home / "bridges"):
            bridge = runner.bridge
            if bridge.product == "prison_releases_housing_need":   # where the releases service publishes
                self._domain_events_topic = topic_arn
            self.supervisor.spawn(f"{bridge.name}-bridge", lambda r=runner: r.run(self._stop_bridges))
            self.say(f"Bridge          {bridge.name} <- SQS {bridge.queue} (SNS {bridge.topic})")

    def _start_web(self) -> None:
        from uvicorn.config import LOGGING_CONFIG

        from dataplatform.web.app import create_app
        from dataplatform.web.server import RunningServer

        self._app = create_app(self.settings)
        port = self.options.web_port if self.options.web_port and not port_open(self.options.web_port) else 0
        self._server = RunningServer(self._app, port=port, log_config=None if self.options.log_to_file else LOGGING_CONFIG)
        self._server.start()
        if not self.settings.schema_registry_url:
            self.settings = self.settings.model_copy(update={"schema_registry_url": self._server.url})
        self.say(f"Web             {self._server.url}/warnings  (catalogue {self._server.url}/catalogue, API {self._server.url}/docs)")
        self.say(f"Schema registry {redacted_url(self.settings.schema_registry_url)}")
        self.say(f"Databases       catalogue {shown_url(self.settings.effective_database_url)}")
        self.say(f"                sink tables {shown_url(self.analytics_url)}")
        self.say(f"Parquet         {self.parquet_path}")

    def _register_products(self) -> None:
        products = list(load_products().values())
        client = registry_client(settings=self.settings)
        for p in products:
            ProductSerde(p, client).register()
        ensure_product_topics(products, self.settings.kafka_bootstrap_servers, settings=self.settings)
        ensure_dead_letter_topics([p.topic for p in products], self.settings.kafka_bootstrap_servers, self.settings)
        ensure_heartbeat_topic(self.settings.kafka_bootstrap_servers, self.settings)
        self.say(f"Data products   {len(products)} registered: {', '.join(p.topic for p in products)}")

    def _start_warnings(self) -> None:
        from dataplatform.web.app import start_warning_follower

        follower = start_warning_follower(self._app, bootstrap=self.settings.kafka_bootstrap_servers,
                                          registry_url=self.settings.schema_registry_url)
        follower.ready.wait(30)
        listener = follower.subscribe()

        def relay() -> None:
            while not self.supervisor.stopping.is_set():
                try:
                    self.transitions.put(listener.get(timeout=0.5))
                    self.counters.transitions += 1
                except queue.Empty:
                    continue
        self.supervisor.spawn("warnings-printer", relay)

    def _start_processor(self) -> None:
        """One processor per derivation spec under schemas/ (each its own consumer group)."""
        from dataplatform.derivations.loading import load_derivations
        from dataplatform.stream_processors.config import ProcessorConfig

        for name in load_derivations():
            config = ProcessorConfig(derivation=name, datadir=str(self.home / "processor" / name),
                                     tick_seconds=self.options.tick_seconds, loglevel="INFO")
            self.supervisor.start_processor(self.options.workers, self.settings, config)
            self.say(f"Stream processor {name}: {self.options.workers} Faust worker(s), logs in {config.datadir}")

    def _start_sinks(self) -> None:
        from dataplatform.sinks.iceberg.catalog import describe_catalog
        from dataplatform.sinks.iceberg.sink import IcebergSink
        from dataplatform.sinks.parquet import ParquetSink
        from dataplatform.sinks.sql import SqlSink

        topics = [p.topic for p in load_products().values()]   # every product, source and derived
        sql = SqlSink(self.settings, topics=topics, mode="upsert", database_url=self.analytics_url,
                      group=SQL_SINK_GROUP, instance_id="run-sql-0")
        parquet = ParquetSink(self.settings, topics=topics, path=str(self.parquet_path),
                              group=PARQUET_SINK_GROUP, instance_id="run-parquet-0")
        iceberg = IcebergSink(self.settings, topics=topics, group=ICEBERG_SINK_GROUP, instance_id="run-iceberg-0",
                              commit_seconds=ICEBERG_COMMIT_SECONDS)
        # opened here, before its thread starts: a new SQL catalog creates its own tables
        self.say(f"Iceberg         catalog {iceberg.catalog.name!r}: {describe_catalog(iceberg.catalog)}")
        for sink in (sql, parquet, iceberg):
            self._sinks.append(sink)
            self.supervisor.spawn(type(sink).__name__, lambda s=sink: s.run(self._stop_sinks))
        self.say(f"Sinks           SQL (upsert, {len(topics)} topics), Parquet and Iceberg")

    def _start_simulators(self) -> None:
        from dataplatform.producers.simulators.bookings import run_bookings_simulator
        from dataplatform.producers.simulators.domain_events import CaseDetailApi
        from dataplatform.producers.simulators.hearings import run_hearings_simulator
        from dataplatform.producers.simulators.housing import run_housing_simulator
        from dataplatform.producers.simulators.releases import run_releases_simulator

        opts = self.options

        def simulate(run, counter: str, scenario: str | None) -> None:
            def progress(done: int, _total: int | None) -> None:
                setattr(self.counters, counter, done)
            try:
                run(self.settings, seed=opts.seed, rate=opts.rate, scenario=scenario,
                    stop_event=self._stop_simulators, progress=progress)
            finally:
                self.counters.simulators_done += 1

        releases = run_releases_simulator
        if self._domain_events_topic:   # domain events, no SDK; its detail API serves until the run stops
            api, arn = self._resources.enter_context(CaseDetailApi()), self._domain_events_topic
            releases = lambda *a, **kw: run_releases_simulator(*a, domain_events_topic=arn, detail_api=api, **kw)  # noqa: E731
        simulators = [("housing", run_housing_simulator, "housing_changes", opts.scenario),
                      ("releases", releases, "release_changes", opts.scenario),
                      ("hearings", run_hearings_simulator, "hearing_changes", opts.court_scenario),
                      ("bookings", run_bookings_simulator, "booking_changes", opts.court_scenario)]
        self.counters.simulators = len(simulators)
        for name, run, counter, scenario in simulators:
            self.supervisor.spawn(f"{name}-simulator", lambda r=run, c=counter, s=scenario: simulate(r, c, s))

        def what(scenario: str | None) -> str:
            return f"scenario {scenario}" if scenario else "ordinary activity"
        way = "domain events on SNS, bridged" if self._domain_events_topic else "SDK"
        self.say(f"Simulators      housing service (outbox relay) and releases service ({way}), {what(opts.scenario)}")
        self.say(f"                listing service and interpreter bookings (SDK), {what(opts.court_scenario)}")

    # -- health --------------------------------------------------------------------------
    def processor_alive(self) -> bool:
        return self.supervisor.processor_alive()

    # -- stop ----------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop everything in reverse order; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self.supervisor.stop_watching()
        self._stop_simulators.set()
        self.supervisor.join("simulator")
        self._stop_bridges.set()   # after the simulators: the last events still reach the product
        self.supervisor.join("-bridge")
        self.supervisor.stop_processor(timeout=45)
        self._stop_sinks.set()
        for sink in self._sinks:
            sink.stop()
        self.supervisor.join()
        if self._app is not None:
            from dataplatform.web.app import stop_warning_follower

            stop_warning_follower(self._app)
        if self._server is not None:
            self._server.stop()
        self._resources.close()


def wait_for(platform: Platform, duration: float | None, on_tick: Callable[[], None],
             interrupted: threading.Event) -> None:
    """Run until ``duration`` passes or ``interrupted`` is set, calling ``on_tick`` often."""
    deadline = time.monotonic() + duration if duration else None
    while not interrupted.is_set() and (deadline is None or time.monotonic() < deadline):
        on_tick()
        interrupted.wait(0.25)
    on_tick()
