"""The Prometheus counters, gauges and histograms the components update as they work.

Measured in the process that does the work (prometheus-client's default registry): warning
transitions read, sink rows written and how long each sink commit took, the outbox relay's
lag and rows published, bridge messages by outcome. In ``dataplatform run`` the sinks and
the housing simulator's relay share the web service's process, which serves them at
``/metrics`` beside its scrape-time figures (:mod:`dataplatform.web.scrape_metrics`); a
sink, bridge or relay started alone serves its own with ``--metrics-port``.

This module sits below the components (they import it) and imports nothing of the project.
Metric names and example alert rules: docs/operations.md.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PREFIX = "dataplatform"

WARNING_TRANSITIONS = Counter(f"{PREFIX}_warning_transitions", "Warning transitions read from the warnings product.",
                              ["severity", "transition"])
SINK_ROWS = Counter(f"{PREFIX}_sink_rows", "Rows a sink made durable (Parquet: in a written file).",
                    ["group", "topic"])
SINK_BUFFERED_ROWS = Gauge(f"{PREFIX}_sink_buffered_rows", "Rows a sink has read but not yet made durable "
                           "(Parquet: in files still open; their offsets are not committed).", ["group", "topic"])
BRIDGE_MESSAGES = Counter(f"{PREFIX}_bridge_messages", "Queue messages a bridge finished with, by outcome: "
                          "published, ignored, or the reason it was dead-lettered.", ["bridge", "outcome"])
SINK_COMMIT_SECONDS = Histogram(f"{PREFIX}_sink_commit_seconds",
                                "Time to write one batch and its offsets durably (one checkpoint).", ["group"],
                                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
OUTBOX_LAG = Gauge(f"{PREFIX}_outbox_lag_seconds", "Age of the oldest outbox row waiting to be published when the "
                   "relay last read (0: none waited).", ["relay"])
OUTBOX_PUBLISHED = Counter(f"{PREFIX}_outbox_rows_published", "Outbox rows the relay published and marked sent.",
                           ["relay", "product"])
OUTBOX_LAST_PUBLISHED = Gauge(f"{PREFIX}_outbox_last_published_timestamp_seconds",
                              "When the relay last marked a row of the product sent (Unix time).", ["relay", "product"])
KAFKA_UP = Gauge(f"{PREFIX}_kafka_up", "1 while a consumer reaches the leaders of the partitions it reads and its group's "
                 "coordinator, 0 while it waits for brokers (dataplatform/kafka/reachability.py).", ["component"])
OUTBOX_UP = Gauge(f"{PREFIX}_outbox_dependency_up", "1 while the relay reaches the part (database, broker), "
                  "0 during an outage of it.", ["relay", "part"])
