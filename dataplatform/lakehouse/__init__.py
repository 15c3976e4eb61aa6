"""Real lakehouse servers started from Maven Central jars, the way the embedded Kafka broker
is: Apache Iceberg's REST catalog server and S3Proxy, an S3-compatible object store on a
local folder. The tests run the Iceberg sink, ``dataplatform query`` and the outage tests
against them, so the REST protocol and S3 paths are exercised by the real thing, with
nothing but Java and Maven installed.
"""
