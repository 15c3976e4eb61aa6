"""A third derivation added the way a new team would: copy a product folder, edit YAML, run.
No Python is written: a copy of the products folder (DATAPLATFORM_PRODUCTS_DIR) gets a new
derived product, "accessible homes against people who need one", made by copying the housing
example's two derived products and editing their manifests, schema and spec (with a measure
of its own condition, people already released, and the region's name on every row);
`schemas check` accepts it and `dataplatform process --derivation` runs it on the real broker."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import PACKAGE_SCHEMAS, PRODUCTS_DIR_ENV, load_product
from tests.support.entities import HOUSING, LEEDS, MANCHESTER, NORTH_WEST, RELEASES, YORKSHIRE
from tests.support.entities import housing_unit, release_case
from tests.support.kafka import create_topic, unique_name
from tests.support.product_topics import TopicReader
from tests.support.sending import ChangeSender
from tests.support.waiting import wait_until

CLI = [sys.executable, "-m", "dataplatform.cli"]
TODAY_UTC = dt.datetime.now(dt.timezone.utc).date()


def copy_and_edit(path: Path, *replacements: tuple[str, str]) -> None:
    text = path.read_text()
    for old, new in replacements:
        assert old in text, f"{old!r} not in {path}"
        text = text.replace(old, new)
    path.write_text(text)


def declare_accessible_homes(root: Path) -> None:
    """What the new team does: two folders copied, YAML edited."""
    figures, warnings = root / "platforms/accessible_homes_cover", root / "platforms/accessible_homes_warnings"
    shutil.copytree(root / "platforms/area_supply_demand", figures)
    shutil.copytree(root / "platforms/housing_shortfall_warnings", warnings)
    copy_and_edit(figures / "manifest.yaml", ("name: area_supply_demand", "name: accessible_homes_cover"))
    copy_and_edit(warnings / "manifest.yaml", ("name: housing_shortfall_warnings", "name: accessible_homes_warnings"),
                  ("upstreamProducts: [area_supply_demand]", "upstreamProducts: [accessible_homes_cover]"))
    copy_and_edit(
        figures / "derivation.yaml",
        ("name: housing_supply_demand", "name: accessible_homes"),
        ("app_id: dataplatform-processor", "app_id: accessible-homes"),
        ('member_when: status == "available"', 'member_when: status == "available" && accessible'),
        ('member_when: status == "scheduled" || status == "released"',
         'member_when: (status == "scheduled" || status == "released") && housing_need == "accessible"'),
        ("product: area_supply_demand", "product: accessible_homes_cover"),
        ("product: housing_shortfall_warnings", "product: accessible_homes_warnings"),
        ("min_need: 5", "min_need: 1"),
        ("id: shortfall", "id: accessible_shortfall"),
        ("    supply: supply\n    demand: demand\n\n# coverage",
         "    supply: supply\n    demand: demand\n    region_name: group.region_name\n    released: released\n"
         "measures:\n  released: {count: demand, when: 'status == \"released\"'}\n\n# coverage"),
    )
    schema = json.loads((figures / "entity.avsc").read_text())
    schema["fields"][4:4] = [{"name": "region_name", "type": ["null", "string"], "default": None},
                             {"name": "released", "type": "int"}]
    (figures / "entity.avsc").write_text(json.dumps(schema))


def test_a_derivation_declared_by_copying_a_folder_runs_without_python(bootstrap, registry_url, tmp_path):
    root = tmp_path / "schemas"
    shutil.copytree(PACKAGE_SCHEMAS, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    declare_accessible_homes(root)
    env = {**os.environ, PRODUCTS_DIR_ENV: str(root), "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "SCHEMA_REGISTRY_URL": registry_url, "DATAPLATFORM_HOME": str(tmp_path / "home")}
    check = subprocess.run([*CLI, "schemas", "check", "--against", ""], env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok    derivation accessible_homes" in check.stdout
    listed = subprocess.run([*CLI, "derivations", "list", "--json"], env=env, capture_output=True, text=True)
    assert "accessible_homes" in listed.stdout

    prefix = unique_name("declared") + "."
    inputs = {HOUSING: create_topic(bootstrap, prefix + "hmpps.social_housing_availability.v1", partitions=2),
              RELEASES: create_topic(bootstrap, prefix + "hmpps.prison_releases_housing_need.v1", partitions=2)}
    process = subprocess.Popen([*CLI, "process", "--derivation", "accessible_homes", "--topic-prefix", prefix,
                                "--partitions", "2", "--tick-seconds", "2"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    figures_product = load_product(root / "platforms/accessible_homes_cover")
    warnings_product = load_product(root / "platforms/accessible_homes_warnings")
    reader = TopicReader(bootstrap, registry_url, {prefix + figures_product.topic: figures_product,
                                                   prefix + warnings_product.topic: warnings_product})
    sender = ChangeSender(bootstrap, registry_url, HOUSING, RELEASES, topics=inputs)
    latest: dict[str, dict] = {}
    try:
        # Manchester: 2 people who need an accessible home, 1 accessible home and 3 that are not
        for i, accessible in enumerate([True, False, False, False]):
            sender.send(HOUSING, ChangeEvent("c", None, housing_unit(f"u{i}", MANCHESTER, NORTH_WEST, accessible=accessible,
                                                                     available_from=TODAY_UTC), "housing", 1))
        for i, (need, status) in enumerate([("accessible", "released"), ("accessible", "scheduled"),
                                            ("general", "released")]):
            sender.send(RELEASES, ChangeEvent("c", None, release_case(f"c{i}", MANCHESTER, NORTH_WEST, status,
                                                                      housing_need=need, release_date=TODAY_UTC),
                                              "releases", 1))
        # Leeds: a general need only: nothing to count
        sender.send(RELEASES, ChangeEvent("c", None, release_case("l1", LEEDS, YORKSHIRE, housing_need="general",
                                                                  release_date=TODAY_UTC), "releases", 1))
        sender.flush()

        def figures() -> dict:
            assert process.poll() is None, "the processor stopped"
            for record in reader.drain():
                latest[record.value["after"].get("warning_id") or record.value["after"]["area_code"]] = \
                    record.value["after"]
            return {code: (f["supply"], f["demand"]) for code, f in latest.items() if ":" not in code}

        wait_until(lambda: figures().get(MANCHESTER) == (1, 2) and figures().get(NORTH_WEST) == (1, 2),
                   timeout=120, message="accessible homes counted")
        # the conditional count (released only) and the region's name, at both levels
        assert [(latest[code]["released"], latest[code]["region_name"]) for code in (MANCHESTER, NORTH_WEST)] \
            == [(1, "North West"), (1, "North West")]
        wait_until(lambda: figures() and latest.get(f"{MANCHESTER}:accessible_shortfall", {}).get("severity") == "RED",
                   timeout=60, message="the new spec's warning")
        warning = latest[f"{MANCHESTER}:accessible_shortfall"]
        # (RED from the moment demand outnumbered supply: 0/1 or 1/2, as the two inputs interleave)
        assert warning["severity"] == "RED" and warning["supply"] < warning["demand"] <= 2
        assert re.fullmatch(r"RED (raised|escalated)  Manchester  demand \d > supply \d \(next 28 days\)",
                            warning["message"])
        assert LEEDS not in figures() or figures()[LEEDS] == (0, 0)
    finally:
        reader.close()
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
        print(out)   # shown when the test fails
    assert "derivation accessible_homes" in out
