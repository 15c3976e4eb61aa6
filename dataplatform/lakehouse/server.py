"""One JVM server answering HTTP on a loopback port: start it, wait until it answers,
stop it, start it again on the same port (for outage tests).

The catalog server and the object store differ only in their command line, their
environment and the URL that proves they are up; this class is the rest. Launching goes
through the embedded broker's :func:`~dataplatform.kafka.jvm.launch`, so the JVM dies with
the Python process that owns it.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from dataplatform.kafka.jvm import java_executable, launch
from dataplatform.kafka.process import free_port, pid_alive, send_signal

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """A lakehouse server did not start or did not answer."""


class HttpJvmServer:
    """A JVM whose state lives in ``data_dir`` (its log is ``data_dir/server.log``)."""

    name = "server"
    ready_path = "/"
    heap = "256m"
    umask: int | None = None

    def __init__(self, data_dir: Path | str, *, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self._process: subprocess.Popen | None = None
        self.started_in_s: float | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    # -- what a concrete server says ------------------------------------------------
    def arguments(self) -> list[str]:
        """Classpath, main class (or source file) and arguments after ``java <jvm flags>``."""
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return {}

    def prepare(self) -> None:
        """Write configuration files, create folders: before every start."""

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> str:
        """Start the server and return its URL once it answers HTTP."""
        if self.running:
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        java = java_executable(f"the {self.name}", "or configure a real catalog and object store")
        cmd = [java, f"-Xmx{self.heap}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               "-Djava.awt.headless=true", *self.arguments()]
        began = time.monotonic()
        log.info("starting the %s on %s (log %s)", self.name, self.url, self.log_file)
        self._process = launch(cmd, self.log_file, owned=True, env=self.environment(), umask=self.umask)
        self._wait_ready(began)
        self.started_in_s = time.monotonic() - began
        log.info("the %s answers on %s after %.1f s", self.name, self.url, self.started_in_s)
        return self.url

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not gone within ``STOP_TIMEOUT_S``."""
        process, self._process = self._process, None
        if process is None:
            return
        send_signal(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            send_signal(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT_S)
        log.info("stopped the %s on %s", self.name, self.url)

    def restart(self) -> str:
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None and pid_alive(self._process.pid)

    def answers(self) -> bool:
        """Whether an HTTP request gets any HTTP answer (an S3 403 is an answer)."""
        try:
            with urllib.request.urlopen(self.url + self.ready_path, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def _wait_ready(self, began: float) -> None:
        while time.monotonic() - began < READY_TIMEOUT_S:
            if self._process is not None and self._process.poll() is not None:
                raise ServerError(f"the {self.name} exited with code {self._process.returncode} before it "
                                  f"answered on {self.url}:\n{self._log_tail()}")
            if self.answers():
                return
            time.sleep(0.2)
        self.stop()
        raise ServerError(f"the {self.name} did not answer on {self.url} within {READY_TIMEOUT_S:.0f} s:\n"
                          f"{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> HttpJvmServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
