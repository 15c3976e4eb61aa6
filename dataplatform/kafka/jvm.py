"""Turn Kafka's jars into a running JVM: find Java, build the command line, format KRaft
storage and launch ``kafka.Kafka``.

The node and the three-node cluster launch their JVMs the same way (the cluster only
launches all of its nodes before waiting for any, as a quorum needs a majority); this
module is that one way, so a JVM flag or a launch option is changed in one place.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from dataplatform.kafka.errors import BrokerError
from dataplatform.kafka.jars import resolve_jars
from dataplatform.kafka.process import set_parent_death_signal

LOG4J_CONFIG = Path(__file__).with_name("log4j2.yaml")


def java_executable(needed_by: str = "the embedded Kafka broker",
                    instead: str = "or set KAFKA_BOOTSTRAP_SERVERS") -> str:
    """``$JAVA_HOME/bin/java``, else ``java`` on PATH; a clear error if there is neither."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise BrokerError(
            f"Java is not installed: {needed_by} needs Java 17+ "
            f"(apt-get install openjdk-17-jre-headless), {instead}."
        )
    return java


def jvm_command(main: str, *args: str, version: str, jars_dir: Path | None, logs_dir: Path,
                heap: str = "256m") -> list[str]:
    """The command line that runs ``main`` from Kafka ``version``'s jars, logging into ``logs_dir``."""
    java = java_executable()
    classpath = f"{resolve_jars(version, jars_dir)}/*"
    return [
        java, f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        f"-Dkafka.logs.dir={logs_dir}",
        "-cp", classpath, main, *args,
    ]


def run_storage_format(cmd: list[str], data_dir: Path) -> None:
    """Run a ``kafka.tools.StorageTool format`` command; say why if it fails."""
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise BrokerError(
            f"formatting Kafka storage in {data_dir} failed:\n"
            f"{(result.stdout + result.stderr)[-3000:]}"
        )


def launch(cmd: list[str], stdout_log: Path, owned: bool, env: dict[str, str] | None = None,
           umask: int | None = None) -> subprocess.Popen:
    """Start ``cmd`` in its own session with its output appended to ``stdout_log``.

    ``owned=True`` has Linux kill it if this Python process dies; ``env`` is added to ours;
    ``umask`` is the child's (files it creates are no more open than that allows).
    """

    def prepare_child() -> None:
        if owned:
            set_parent_death_signal()
        if umask is not None:
            os.umask(umask)

    stdout = open(stdout_log, "ab")
    try:
        return subprocess.Popen(
            cmd, stdout=stdout, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, **env} if env else None,
            preexec_fn=prepare_child if owned or umask is not None else None,
        )
    finally:
        stdout.close()
