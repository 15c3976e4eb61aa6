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


def cli(*args: str, columns: int = 120, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1", **env}
    return subprocess.run([sys.executable, "-m", "dataplatform.cli", *args], capture_output=True, text=True,
                          env=environment, timeout=60)


def test_no_product_or_topic_name_is_ever_cut_at_any_width_from_60():
    """``products list`` at 60 to 160 columns: every name and topic whole on one line (a
    table while the name columns fit side by side, else one block per product)."""
    from dataplatform.cli.tables import print_fitted
    from dataplatform.products.product import load_products

    products = load_products()
    rows = [(p.name, p.manifest.domain, p.manifest.version, p.manifest.status, p.topic, p.manifest.dataProductOwner)
            for p in products.values()]
    for width in range(60, 161, 10):
        console = Console(width=width, record=True, file=open(os.devnull, "w"))
        print_fitted(console, ("name", "domain", "version", "status", "topic", "owner"), rows,
                     whole=("name", "topic"), drop_order=("owner", "status", "version", "domain"))
        lines = console.export_text().splitlines()
        for p in products.values():
            assert any(p.name in line for line in lines), (width, p.name)
            assert any(p.topic in line for line in lines), (width, p.topic)


def test_a_bad_registry_url_is_one_line_of_error_and_exit_2():
    for url, says in (("http://user:secret@127.0.0.1:1", "carries credentials"), ("htp://x", "not an http(s) URL"),
                      ("http://[::1", "not a URL"), ("http://127.0.0.1:1", "Connection refused")):
        out = cli("schemas", "register", "--registry", url)
        assert out.returncode == 2, (url, out.stderr)
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: ") and says in out.stderr, out.stderr
        assert "secret" not in out.stderr and "Traceback" not in out.stderr


def test_library_log_lines_stay_off_the_terminal_unless_verbose():
    """httpx logs each request at INFO: shown only with --verbose (the platform's own INFO lines stay)."""
    import logging

    from dataplatform.cli.main import main

    root, platform = logging.getLogger(), logging.getLogger("dataplatform")
    before = root.level, platform.level, list(root.handlers)
    try:
        main(verbose=False, version=False)
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
        assert logging.getLogger("dataplatform.cli").isEnabledFor(logging.INFO)
    finally:
        root.setLevel(before[0])
        platform.setLevel(before[1])
        root.handlers[:] = before[2]
