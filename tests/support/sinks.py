"""Test-only data products for the sink tests.

Each test gets its own product (so its own topic and its own tables): a manifest and an
entity schema with every kind of field the sinks map (timestamps, dates, decimals, enums,
nullable unions, nested records, arrays, maps, a personal field).
"""

from __future__ import annotations

import copy
import threading
import json
import uuid
from contextlib import contextmanager
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import yaml
from dataplatform.products.product import DataProduct, load_product

ENTITY = {
    "type": "record", "name": "SinkCase", "doc": "A test entity with every kind of field.",
    "fields": [
        {"name": "case_id", "type": "string"},
        {"name": "person_ref", "type": "string"},
        {"name": "status", "type": {"type": "enum", "name": "SinkStatus", "symbols": ["open", "closed"]}},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
        {"name": "due", "type": {"type": "int", "logicalType": "date"}},
        {"name": "updated_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "address", "type": {"type": "record", "name": "SinkAddress", "fields": [
            {"name": "town", "type": "string"}, {"name": "postcode", "type": ["null", "string"], "default": None}]}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "counts", "type": {"type": "map", "values": "int"}},
    ],
}
EXTRA_FIELD = {"name": "priority", "type": ["null", "int"], "default": None}


def make_product(root: Path, name: str | None = None, extra_field: bool = False, **manifest_fields) -> DataProduct:
    """Write a test product under ``root/hmpps/<name>/`` and load it (``manifest_fields``
    override or add manifest fields)."""
    name = name or f"sinktest_{uuid.uuid4().hex[:10]}"
    folder = root / "hmpps" / name
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": name, "description": "A test product for the sink tests.", "domain": "HMPPS",
        "dataProductOwner": "owner@justice.gov.uk", "dataProductOwnerDisplayName": "Owner",
        "email": "team@justice.gov.uk", "status": "draft", "dpiaRequired": False, "retentionPeriod": 7,
        "version": "1.1" if extra_field else "1.0", "securityClassification": "Official",
        "refreshPeriod": "PT1M", "keyFields": ["case_id"], "personalDataFields": ["person_ref"],
        **manifest_fields,
    }
    entity = copy.deepcopy(ENTITY)
    if extra_field:
        entity["fields"].append(EXTRA_FIELD)
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    (folder / "entity.avsc").write_text(json.dumps(entity))
    return load_product(folder)


def entity(i: int, version: int = 0, extra: bool = False) -> dict:
    e = {
        "case_id": f"case-{i}", "person_ref": f"PERSON-{i}-SECRET", "status": "open" if version % 2 == 0 else "closed",
        "amount": Decimal(f"{i}.{version:02d}"), "due": date(2026, 1, 1 + i % 28),
        "updated_at": datetime(2026, 11, 27, 10, i % 60, version % 60, tzinfo=timezone.utc),
        "note": None if i % 3 == 0 else f"note {i}/{version}",
        "address": {"town": f"Town {i % 5}", "postcode": None if i % 2 else f"AB{i} 1CD"},
        "tags": [f"t{version}", "x"], "counts": {"v": version},
    }
    if extra:
        e["priority"] = i * 10 + version
    return e


DAY = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)


def decoded_batch(sink, product: DataProduct, offsets: range, partition: int = 0, when: datetime = DAY,  # noqa: ANN001
                  dead_letters: int = 0):
    """A batch of creates at ``offsets`` as ``sink`` prepares them (then ``dead_letters``
    offsets with no row): what a sink's write path receives, without a broker."""
    from dataplatform.sinks.records import Batch, SinkRecord

    batch = Batch()
    for offset in offsets:
        value = {"op": "c", "before": None, "after": entity(offset), "ts_ms": when,
                 "source": {"system": "test", "event_id": f"e{partition}-{offset}", "position": offset}}
        record = SinkRecord(product.topic, partition, offset, f"case-{offset}", value, None,
                            int(when.timestamp() * 1000), product)
        batch.items.append(sink.prepare(record))
    tp = (product.topic, partition)
    batch.next_offsets[tp], batch.rows[tp] = offsets.stop + dead_letters, len(offsets)
    return batch


@contextmanager
def running(sink):  # noqa: ANN001 - any BatchingSink
    """Run the sink on a thread; stop it cleanly and surface any error it raised."""
    errors: list[BaseException] = []
    stop = threading.Event()

    def target() -> None:
        try:
            sink.run(stop)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield sink
    except AssertionError:
        if errors:  # the sink's own failure explains the timeout better
            raise errors[0]
        raise
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive(), "the sink did not stop"
    if errors:
        raise errors[0]
