"""``dataplatform process`` supervises its workers: a worker killed with SIGKILL is restarted
and reported, the other keeps running, and SIGTERM stops everything cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.kafka import unique_name
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (the workers)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return sorted(int(p) for p in out.split())


def test_process_restarts_a_killed_worker_and_keeps_the_other(bootstrap, registry_url, tmp_path):
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SCHEMA_REGISTRY_URL": registry_url,
           "DATAPLATFORM_HOME": str(tmp_path)}
    name = unique_name("proc-cli")
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "w") as err:
        cli = subprocess.Popen([sys.executable, "-m", "dataplatform.cli.__main__", "process", "--workers", "2",
                                "--app-id", f"{name}.processor", "--topic-prefix", f"{name}.", "--tick-seconds", "3600"],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        wait_until(lambda: len(children(cli.pid)) == 2, timeout=60, message="two workers started")
        first, second = children(cli.pid)
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: "was killed by signal 9" in stderr.read_text() and len(children(cli.pid)) == 2,
                   timeout=60, message=f"the killed worker restarted; stderr:\n{stderr.read_text()}")
        assert cli.poll() is None                                   # the command did not give up
        assert second in children(cli.pid) and first not in children(cli.pid)   # the other kept working
        assert "restarted after" in stderr.read_text() and "log:" in stderr.read_text()
    finally:
        cli.send_signal(signal.SIGTERM)
        out, _ = cli.communicate(timeout=90)
    assert cli.returncode == 0, out
    assert "Stopping workers" in out and children(cli.pid) == []
