"""Resolve Apache Kafka's broker jars from Maven Central, once, into a cache folder.

The pom next to this module lists ``kafka_2.13`` and the log4j2 binding that Kafka does
not bring transitively. Maven copies the runtime closure into one folder so the
classpath is simply ``<folder>/*``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

POM = Path(__file__).with_name("pom.xml")
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
LOG4J_VERSION = "2.24.3"


class JarResolutionError(RuntimeError):
    """Maven could not provide Kafka's jars."""


def default_cache_dir(version: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "dataplatform" / f"kafka-{version}"


def resolve_jars(version: str, target: Path | None = None) -> Path:
    """Return a folder holding Kafka ``version``'s runtime jars, downloading them if needed.

    A ``.complete`` marker is written last so an interrupted download is redone rather
    than used half-finished.
    """
    target = target or default_cache_dir(version)
    marker = target / ".complete"
    if marker.exists():
        return target
    mvn = shutil.which("mvn")
    if not mvn:
        raise JarResolutionError(
            "Maven ('mvn') is not on PATH: install Maven (apt-get install maven) so the "
            "embedded Kafka broker's jars can be resolved, or set KAFKA_BOOTSTRAP_SERVERS "
            "to use an existing cluster."
        )
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    cmd = [
        mvn, "-B", "-q", "-f", str(POM),
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={partial}",
        f"-Dkafka.version={version}",
        f"-Dlog4j.version={LOG4J_VERSION}",
    ]
    log.info("resolving Apache Kafka %s jars with Maven into %s", version, target)
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not any(partial.glob("kafka_2.13-*.jar")):
        raise JarResolutionError(
            f"Maven could not resolve Apache Kafka {version} from Maven Central "
            f"(exit {result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}"
        )
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    marker.write_text(version)
    return target
