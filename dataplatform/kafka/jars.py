"""Resolve Apache Kafka's broker jars (and those of any server the platform starts from
Maven Central) once, into a cache folder.

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
    """Maven could not provide a server's jars."""


def cache_root() -> Path:
    """``~/.cache/dataplatform`` (or under ``XDG_CACHE_HOME``): one folder per resolved server."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dataplatform"


def default_cache_dir(version: str) -> Path:
    return cache_root() / f"kafka-{version}"


def resolve_jars(version: str, target: Path | None = None) -> Path:
    """Return a folder holding Kafka ``version``'s runtime jars, downloading them if needed."""
    return resolve_maven_dependencies(
        POM, target or default_cache_dir(version),
        {"kafka.version": version, "log4j.version": LOG4J_VERSION},
        expect="kafka_2.13-*.jar", what=f"Apache Kafka {version}",
        hint="or set KAFKA_BOOTSTRAP_SERVERS to use an existing cluster")


def resolve_maven_dependencies(pom: Path, target: Path, properties: dict[str, str], *, expect: str,
                               what: str, hint: str) -> Path:
    """Copy the runtime closure of ``pom``'s dependencies into ``target``, once.

    ``expect`` is a file pattern that must match afterwards (the main jar). A
    ``.complete`` marker is written last so an interrupted download is redone rather
    than used half-finished. Shared by every server the platform starts from jars.
    """
    marker = target / ".complete"
    if marker.exists():
        return target
    mvn = shutil.which("mvn")
    if not mvn:
        raise JarResolutionError(
            f"Maven ('mvn') is not on PATH: install Maven (apt-get install maven) so the jars of "
            f"{what} can be resolved, {hint}."
        )
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    cmd = [
        mvn, "-B", "-q", "-f", str(pom),
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={partial}",
        *(f"-D{name}={value}" for name, value in properties.items()),
    ]
    log.info("resolving %s jars with Maven into %s", what, target)
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not any(partial.glob(expect)):
        raise JarResolutionError(
            f"Maven could not resolve {what} from Maven Central "
            f"(exit {result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}"
        )
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    marker.write_text(" ".join(f"{k}={v}" for k, v in properties.items()))
    return target
