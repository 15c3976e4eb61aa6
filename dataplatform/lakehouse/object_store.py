"""S3Proxy: an S3-compatible object store on a local folder (jclouds' filesystem-nio2 provider),
with its own credentials (AWS signature v2 or v4), on a loopback port.

A bucket is a sub-folder of ``data_dir/buckets``; :meth:`ObjectStore.create_bucket` makes
one. The folder outlives a restart, so an outage test stops and starts the same store.

The filesystem provider reads an object's ACL from its file mode: a folder or file that
others may read is *public-read*, listed and served without credentials. So the store runs
with umask 077 and makes its bucket folders 0700: every request needs the credentials.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from dataplatform.lakehouse.jars import object_store_jars
from dataplatform.lakehouse.server import HOST, HttpJvmServer

# S3Proxy's jar has no logback configuration, and logback's default is DEBUG for everything.
LOGBACK = """<configuration>
  <appender name="out" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level %logger{36} - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="out"/></root>
</configuration>
"""


class ObjectStore(HttpJvmServer):
    """``org.gaul.s3proxy.Main`` with a properties file written into ``data_dir``."""

    name = "S3 object store (S3Proxy)"
    region = "us-east-1"
    umask = 0o077

    def __init__(self, data_dir: Path | str, *, port: int | None = None) -> None:
        super().__init__(data_dir, port=port)
        self.access_key_id = "dataplatform-" + secrets.token_hex(4)
        self.secret_access_key = secrets.token_urlsafe(24)

    @property
    def buckets_dir(self) -> Path:
        return self.data_dir / "buckets"

    def create_bucket(self, name: str) -> str:
        """A bucket named ``name`` (a folder of the filesystem provider); its ``s3://`` URL."""
        self.buckets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.buckets_dir / name).mkdir(mode=0o700, exist_ok=True)
        return f"s3://{name}/"

    def prepare(self) -> None:
        self.buckets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.data_dir / "logback.xml").write_text(LOGBACK)
        config = self.data_dir / "s3proxy.properties"
        config.touch(mode=0o600)
        config.write_text("\n".join([
            f"s3proxy.endpoint=http://{HOST}:{self.port}",
            "s3proxy.authorization=aws-v2-or-v4",
            f"s3proxy.identity={self.access_key_id}",
            f"s3proxy.credential={self.secret_access_key}",
            "jclouds.provider=filesystem-nio2",
            f"jclouds.filesystem.basedir={self.buckets_dir}",
        ]) + "\n")

    def arguments(self) -> list[str]:
        return [f"-Dlogback.configurationFile={self.data_dir / 'logback.xml'}",
                "-cp", f"{object_store_jars()}/*", "org.gaul.s3proxy.Main",
                "--properties", str(self.data_dir / "s3proxy.properties")]

    def client_properties(self) -> dict[str, str]:
        """pyiceberg's FileIO properties for this store (``s3.*``)."""
        return {"s3.endpoint": self.url, "s3.access-key-id": self.access_key_id,
                "s3.secret-access-key": self.secret_access_key, "s3.path-style-access": "true",
                "s3.region": self.region}
