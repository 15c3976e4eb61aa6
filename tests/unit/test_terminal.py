"""What people see in a terminal: no raw librdkafka lines, whole names at 80 columns,
flags without ``<bool>``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from rich.console import Console

from dataplatform.cli.tables import fitted_table

PROBE = textwrap.dedent("""
    import socket, sys
    from pathlib import Path
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()   # nothing listens there
    from confluent_kafka import Producer
    from dataplatform.config import Settings
    from dataplatform.kafka_config import reliable_producer_config
    from dataplatform.logs import log_to_file
    conf = reliable_producer_config(f"127.0.0.1:{port}", Settings())
    if sys.argv[1] == "without-logger":
        conf.pop("logger")          # what every client did before: librdkafka writes to stderr itself
    else:
        log_to_file(Path(sys.argv[2]))
    print("platform line")
    producer = Producer(conf); producer.produce("t", b"x"); producer.flush(2)
""")


def run_probe(tmp_path: Path, mode: str) -> subprocess.CompletedProcess:
    log = tmp_path / "logs" / "dataplatform.log"
    return subprocess.run([sys.executable, "-c", PROBE, mode, str(log)], capture_output=True, text=True, timeout=60)


def test_librdkafka_lines_go_to_the_log_file_not_the_terminal(tmp_path: Path):
    raw = run_probe(tmp_path, "without-logger")
    assert "%3|" in raw.stderr and "Connect to" in raw.stderr      # the noise this fixes, as it was
    routed = run_probe(tmp_path, "to-file")
    assert routed.returncode == 0, routed.stderr
    assert routed.stdout == "platform line\n" and routed.stderr == ""
    logged = (tmp_path / "logs" / "dataplatform.log").read_text()
    assert "dataplatform.kafka.client" in logged and "Connect to" in logged


def test_product_list_at_80_columns_keeps_every_name_and_topic_whole():
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "dataplatform.cli.__main__", "products", "list"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "…" not in out.stdout
    for name in ("prison_releases_housing_need", "hmpps.prison_releases_housing_need.v1",
                 "social_housing_availability", "platforms.housing_shortfall_warnings.v1"):
        assert name in out.stdout
    assert max(len(line) for line in out.stdout.splitlines()) <= 80
    assert "hidden at this width: owner, status, version, domain; see --json" in out.stdout


def test_fitted_table_drops_columns_in_order_only_when_needed():
    rows = [("a_rather_long_product_name", "Platforms", "someone@justice.gov.uk")]
    headers = ("name", "domain", "owner")
    _, dropped = fitted_table(headers, rows, 200, whole=("name",), drop_order=("owner", "domain"))
    assert dropped == []
    table, dropped = fitted_table(headers, rows, 45, whole=("name",), drop_order=("owner", "domain"))
    assert dropped == ["owner"]
    console = Console(width=45, record=True, file=open(os.devnull, "w"))
    console.print(table)
    assert "a_rather_long_product_name" in console.export_text()


def test_help_lists_flags_without_bool_and_options_with_their_type():
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "dataplatform.cli.__main__", "run", "--help"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "--fresh" in out.stdout and "<bool>" not in out.stdout
    assert "<float>" in out.stdout                                   # --duration still says what it takes
