"""Configuration of a compiled processor: which derivation, app id, topics, partitions, rules.

Shared by two rooms: the engine builds its app from it, the deployment writes it for each
worker (and creates the topics it names), so it lives beside both, not in the deployment.

Topic names come from :attr:`DataProduct.topic`; ``topic_prefix`` and ``topic_overrides``
let tests (and parallel deployments) give every run its own topics, and ``app_id`` its
own consumer group and internal topics. Every topic name the processor uses comes from
here: the products' topics, the repartition topic and the tables' changelogs.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from functools import lru_cache

from dataplatform.config import Settings, get_settings
from dataplatform.derivations.loading import load_derivation, read_yaml, spec_path
from dataplatform.derivations.parse import default_app_id
from dataplatform.derivations.spec import Derivation
from dataplatform.kafka_config import client_config
from dataplatform.products.product import get_product

CONFIG_ENV = "DATAPLATFORM_PROCESSOR_CONFIG"   # a worker process's configuration (JSON), set by its pool
DEFAULT_DERIVATION = "housing_supply_demand"
GROUPS_TABLE = "groups"   # stage 2's table; stage 1 has one per input, see entity_table
STORE_ENV = "PROCESSOR_STORE"
# Where a worker keeps its tables. rocksdb:// (the default): on disk under the worker's datadir,
# so a restarted worker reads only the changelog records written since; memory://: rebuilt from
# the changelogs at every start (docs/stream-processing.md, "State stores").
STORES = ("rocksdb://", "memory://")
# rocksdb:// only: the bulk restore of a table partition (engine/fast_restore.py)
BULK_FROM_RECORDS = 10_000   # behind by fewer: Faust's own recovery reads them as quickly
FETCH_RECORDS = 20_000       # records per consume() call, and so per RocksDB write batch


def default_store() -> str:
    return os.environ.get(STORE_ENV) or STORES[0]


def entity_table(product: str) -> str:
    """Stage 1's table of the latest state of each entity of ``product``."""
    return f"entities-{product}"


@dataclass
class ProcessorConfig:
    derivation: str = DEFAULT_DERIVATION
    app_id: str = ""   # default: the spec's app_id (dataplatform-<name>)
    bootstrap: str | None = None
    registry_url: str | None = None
    topic_prefix: str = ""
    topic_overrides: dict[str, str] = field(default_factory=dict)
    partitions: int = 4
    rules_path: str | None = None   # an operations rules file replacing the spec's rules
    horizon_days: int | None = None
    tick_seconds: float = 30.0
    heartbeat_seconds: float = 10.0   # how often each worker publishes its heartbeat
    # Events are processed in batches of up to batch_size, or whatever arrived within
    # batch_seconds: a group's derived figures and table values are written once per batch,
    # so a longer window costs latency and buys throughput (docs/stream-processing.md).
    batch_size: int = 1000
    batch_seconds: float = 0.1
    # Static group membership: a worker restarted with the same id takes its partitions
    # back at once; without one the group waits session_timeout_seconds for the old
    # incarnation (60 s with Faust's default). start_workers gives each worker its own.
    instance_id: str | None = None
    session_timeout_seconds: float = 10.0
    datadir: str | None = None
    loglevel: str = "WARNING"
    store: str = field(default_factory=default_store)
    # rocksdb:// only: a table partition whose local store is this many changelog records
    # behind or more is bulk-restored (stream_processors/engine/fast_restore.py) before Faust's recovery
    bulk_restore_from: int = BULK_FROM_RECORDS
    bulk_restore_batch: int = FETCH_RECORDS

    def __post_init__(self) -> None:
        if self.store not in STORES:
            raise ValueError(f"table store {self.store!r} (from {STORE_ENV} or --store) is not one of "
                             f"{', '.join(STORES)}: use rocksdb:// (the default) or memory://")
        if not self.app_id:
            doc = read_yaml(spec_path(self.derivation))
            self.app_id = doc.get("app_id") or default_app_id(self.derivation)

    def resolved(self, settings: Settings | None = None) -> "ProcessorConfig":
        """A copy with the broker and registry filled in from the platform settings."""
        settings = settings or get_settings()
        bootstrap = str(client_config(self.bootstrap, settings)["bootstrap.servers"])
        registry = self.registry_url or settings.schema_registry_url
        if not registry:
            raise ValueError("no schema registry: set SCHEMA_REGISTRY_URL or pass registry_url")
        datadir = self.datadir or tempfile.mkdtemp(prefix=f"{self.app_id}-")
        return self.with_(bootstrap=bootstrap, registry_url=registry, datadir=datadir)

    @property
    def spec(self) -> Derivation:
        """The derivation this processor runs (rules and horizon overridden if configured)."""
        return _spec(self.derivation, self.rules_path, self.horizon_days)

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.spec.input_products

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.spec.output_products

    @property
    def tables(self) -> tuple[str, ...]:
        return (*(entity_table(p) for p in self.inputs), GROUPS_TABLE)

    def topic(self, product_name: str) -> str:
        """The topic a product is read from / written to in this deployment."""
        if product_name in self.topic_overrides:
            return self.topic_overrides[product_name]
        return self.topic_prefix + get_product(product_name).topic

    @property
    def contributions_topic(self) -> str:
        """The group-keyed repartition topic between stage 1 and stage 2 (named like Faust's
        changelogs, after the app id, so two deployments never share it)."""
        return f"{self.app_id}-group-contributions"

    @property
    def leader_topic(self) -> str:
        """Faust's assignor's topic (the name is Faust's), created up front with the others so
        that it gets the platform's replication."""
        return f"{self.app_id}-__assignor-__leader"

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


@lru_cache(maxsize=None)
def _spec(name: str, rules_path: str | None, horizon_days: int | None) -> Derivation:
    return load_derivation(spec_path(name), rules_path, horizon_days)
