"""Shared plumbing of the data platform: settings, Kafka clients, the embedded broker,
the schema registry and catalogue service, and the ``dataplatform`` command line."""

__version__ = "0.1.0"
