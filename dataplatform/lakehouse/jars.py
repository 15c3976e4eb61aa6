"""Resolve the lakehouse servers' jars from Maven Central, once, into ``~/.cache/dataplatform``.

Each server has its own pom next to this module and its own folder of jars: the two bring
different Jetty and AWS SDK versions and must not share a classpath.

    python -m dataplatform.lakehouse.jars     # resolve both (``make jars`` does)
"""

from __future__ import annotations

import sys
from pathlib import Path

from dataplatform.kafka.jars import cache_root, resolve_maven_dependencies

HERE = Path(__file__).parent
ICEBERG_VERSION = "1.10.1"
S3PROXY_VERSION = "4.1.0"
JACKSON_ANNOTATIONS_VERSION = "2.21"  # what S3Proxy 4's Jackson 3 needs (see the pom)
HINT = "or configure a real catalog and object store (docs/analysts.md)"


def rest_catalog_jars() -> Path:
    """``org.apache.iceberg:iceberg-open-api:<version>:test-fixtures`` and its runtime."""
    return resolve_maven_dependencies(
        HERE / "rest-catalog-pom.xml", cache_root() / f"iceberg-rest-catalog-{ICEBERG_VERSION}",
        {"iceberg.version": ICEBERG_VERSION}, expect="iceberg-open-api-*-test-fixtures.jar",
        what=f"Apache Iceberg's REST catalog server {ICEBERG_VERSION}", hint=HINT)


def object_store_jars() -> Path:
    """``org.gaul:s3proxy:<version>`` and its runtime (jclouds' filesystem provider)."""
    return resolve_maven_dependencies(
        HERE / "s3proxy-pom.xml", cache_root() / f"s3proxy-{S3PROXY_VERSION}",
        {"s3proxy.version": S3PROXY_VERSION, "jackson-annotations.version": JACKSON_ANNOTATIONS_VERSION},
        expect="s3proxy-*.jar",
        what=f"S3Proxy {S3PROXY_VERSION}", hint=HINT)


if __name__ == "__main__":
    for folder in (rest_catalog_jars(), object_store_jars()):
        sys.stdout.write(f"{folder}\n")
