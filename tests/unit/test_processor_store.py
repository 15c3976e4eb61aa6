"""The processor's table store: rocksdb:// unless PROCESSOR_STORE or --store says memory://."""

from __future__ import annotations

import pytest

from dataplatform.stream_processors.config import STORE_ENV, ProcessorConfig
from dataplatform.stream_processors.engine.topology import build_app


def test_rocksdb_is_the_default(monkeypatch):
    monkeypatch.delenv(STORE_ENV, raising=False)
    assert ProcessorConfig().store == "rocksdb://"


def test_the_environment_chooses_the_store_and_workers_inherit_it(monkeypatch):
    monkeypatch.setenv(STORE_ENV, "memory://")
    config = ProcessorConfig()
    monkeypatch.delenv(STORE_ENV)
    # a worker gets its configuration as JSON from its pool, not from its own environment
    assert ProcessorConfig.from_json(config.to_json()).store == "memory://"
    assert config.with_(partitions=2).store == "memory://"


def test_an_unknown_store_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"'redis://'.*PROCESSOR_STORE.*rocksdb://, memory://"):
        ProcessorConfig(store="redis://")


@pytest.mark.parametrize("store, module", [("memory://", "faust.stores.memory"), ("rocksdb://", "faust.stores.rocksdb")])
def test_every_table_is_kept_in_the_configured_store(store, module, tmp_path):
    config = ProcessorConfig(bootstrap="localhost:9", registry_url="http://localhost:9", datadir=str(tmp_path),
                             store=store)
    processor = build_app(config, warm=False)
    tables = [*processor.entities.values(), processor.groups]
    assert [type(table.data).__module__ for table in tables] == [module] * len(tables)
