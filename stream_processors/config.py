"""Configuration of the supply/demand processor: app id, topics, partitions, rules.

Topic names come from :attr:`DataProduct.topic`; ``topic_prefix`` and ``topic_overrides``
let tests (and parallel deployments) give every run its own topics, and ``app_id`` its
own consumer group and changelog topics. Every topic name the processor uses comes from
here: the products' topics, the repartition topic and the tables' changelogs.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field

from dataplatform.config import Settings, get_settings
from dataplatform.kafka_config import client_config
from dataplatform.products.product import get_product
from dataplatform.stream_processors.rules import DEFAULT_RULES_PATH
from dataplatform.stream_processors.supply_demand import HOUSING, RELEASES

CONFIG_ENV = "DATAPLATFORM_PROCESSOR_CONFIG"   # a worker process's configuration (JSON), set by its pool
SUPPLY_DEMAND = "area_supply_demand"
WARNINGS = "housing_shortfall_warnings"
INPUTS = (HOUSING, RELEASES)
OUTPUTS = (SUPPLY_DEMAND, WARNINGS)
# the processor's tables: stage 1's latest entity states, stage 2's areas
ENTITY_TABLES = {name: f"entities-{name}" for name in INPUTS}
AREAS_TABLE = "areas"
TABLES = (*ENTITY_TABLES.values(), AREAS_TABLE)


@dataclass
class ProcessorConfig:
    app_id: str = "dataplatform-processor"
    bootstrap: str | None = None
    registry_url: str | None = None
    topic_prefix: str = ""
    topic_overrides: dict[str, str] = field(default_factory=dict)
    partitions: int = 4
    replication_factor: int = 1
    rules_path: str = str(DEFAULT_RULES_PATH)
    horizon_days: int | None = None
    tick_seconds: float = 30.0
    heartbeat_seconds: float = 10.0   # how often each worker publishes its heartbeat
    # Events are processed in batches of up to batch_size, or whatever arrived within
    # batch_seconds: an area's derived figures and table values are written once per batch,
    # so a longer window costs latency and buys throughput (docs/stream-processing.md).
    batch_size: int = 1000
    batch_seconds: float = 0.1
    processing_guarantee: str = "at_least_once"
    # Static group membership: a worker restarted with the same id takes its partitions
    # back at once; without one the group waits session_timeout_seconds for the old
    # incarnation (60 s with Faust's default). start_workers gives each worker its own.
    instance_id: str | None = None
    session_timeout_seconds: float = 10.0
    datadir: str | None = None
    loglevel: str = "WARNING"

    def resolved(self, settings: Settings | None = None) -> "ProcessorConfig":
        """A copy with the broker and registry filled in from the platform settings."""
        settings = settings or get_settings()
        bootstrap = str(client_config(self.bootstrap, settings)["bootstrap.servers"])
        registry = self.registry_url or settings.schema_registry_url
        if not registry:
            raise ValueError("no schema registry: set SCHEMA_REGISTRY_URL or pass registry_url")
        datadir = self.datadir or tempfile.mkdtemp(prefix=f"{self.app_id}-")
        return ProcessorConfig(**{**asdict(self), "bootstrap": bootstrap, "registry_url": registry,
                                  "datadir": datadir})

    def topic(self, product_name: str) -> str:
        """The topic a product is read from / written to in this deployment."""
        if product_name in self.topic_overrides:
            return self.topic_overrides[product_name]
        return self.topic_prefix + get_product(product_name).topic

    @property
    def contributions_topic(self) -> str:
        """The area-keyed repartition topic between stage 1 and stage 2 (named like Faust's
        changelogs, after the app id, so two deployments never share it)."""
        return f"{self.app_id}-area-contributions"

    def changelog_topic(self, table: str) -> str:
        """The changelog of ``table``: Faust's own name for it (``<app id>-<table>-changelog``),
        so the topic created up front is the one the table writes to."""
        return f"{self.app_id}-{table}-changelog"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ProcessorConfig":
        return cls(**json.loads(text))

    def with_(self, **changes: object) -> "ProcessorConfig":
        return ProcessorConfig(**{**asdict(self), **changes})
