"""docs/alerts.yml and the scrape config in docs/operations.md match what /metrics serves:
every metric an alert names exists (with the labels it matches on), and the documented
credentials open /metrics once reads need a token."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from dataplatform.config import Settings
from dataplatform.heartbeat import Heartbeat, HeartbeatBoard
from dataplatform.metrics import (OUTBOX_LAG, OUTBOX_UP, SINK_BUFFERED_ROWS, SINK_COMMIT_SECONDS, SINK_ROWS)
from dataplatform.web.app import create_app
from tests.support.warnings import warning

DOCS = Path(__file__).resolve().parents[2] / "docs"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
SELECTOR = re.compile(r"\b(dataplatform_[a-z_]+)(\{[^}]*\})?")


def served(tmp_path: Path) -> dict[str, set[str]]:
    """Every series name /metrics serves, with its label names, from an app with a warning,
    a heartbeat, a sink's and an outbox relay's figures."""
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}"))
    app.state.warning_store.add({"before": None, "after": warning(), "source": {"event_id": "e1"}}, 0, 0)
    board = HeartbeatBoard("unused:9092")
    board.record(Heartbeat("p0", "area_supply_demand", 1, 1, events_in=1, events_out=1))
    app.state.heartbeats = board
    SINK_ROWS.labels("g", "t").inc(0)
    SINK_BUFFERED_ROWS.labels("g", "t").set(0)
    SINK_COMMIT_SECONDS.labels("g").observe(0)
    OUTBOX_LAG.labels("r").set(0)
    OUTBOX_UP.labels("r", "database").set(1)
    with TestClient(app) as client:
        text = client.get("/metrics").text
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.setdefault(family.name + suffix, set()).update(*(s.labels for s in family.samples))
    return names


def test_every_alert_names_metrics_and_labels_that_metrics_serves(tmp_path: Path):
    rules = [r for g in yaml.safe_load((DOCS / "alerts.yml").read_text())["groups"] for r in g["rules"]]
    assert len(rules) >= 8 and all({"alert", "expr", "labels"} <= r.keys() for r in rules)
    names = served(tmp_path)
    problems = []
    for rule in rules:
        for name, matchers in SELECTOR.findall(rule["expr"]):
            if name not in names:
                problems.append(f"{rule['alert']}: {name} is not served")
            for label in re.findall(r"(\w+)\s*=", matchers):
                if label not in names.get(name, set()):
                    problems.append(f"{rule['alert']}: {name} has no label {label!r}")
        for label in re.findall(r"(?:by|on) \(([^)]*)\)", rule["expr"]):
            for part in (p.strip() for p in label.split(",")):
                if part != "le" and not any(part in labels for labels in names.values()):
                    problems.append(f"{rule['alert']}: no metric has the label {part!r}")
    assert not problems, "\n".join(problems)
    assert "dataplatform_warnings" in names and {"product", "severity"} <= names["dataplatform_warnings"]


def test_the_documented_scrape_config_opens_metrics_when_reads_need_a_token(tmp_path: Path):
    operations = (DOCS / "operations.md").read_text()
    config = yaml.safe_load(re.search(r"```yaml\n# prometheus.yml\n(.*?)```", operations, re.S).group(1))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    auth = jobs["dataplatform"]["authorization"]
    assert auth["type"] == "Bearer" and auth["credentials_file"]
    # a sink's or relay's own port needs the same token (tests/unit/test_metrics_port.py)
    assert {name: job.get("authorization") for name, job in jobs.items()} == {name: auth for name in jobs}
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", api_read_token=SecretStr("reader")))
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 401
        answer = client.get("/metrics", headers={"Authorization": "Bearer reader"})
        assert answer.status_code == 200 and "dataplatform_warnings" in answer.text

