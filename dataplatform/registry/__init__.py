"""The platform's own Confluent-compatible schema registry.

Data products carry Avro schemas; producers and consumers talk to a registry with
confluent-kafka's standard ``SchemaRegistryClient``. Running our own (instead of requiring
Confluent's Java service) keeps ``make run`` free of Docker while staying wire-compatible,
so ``SCHEMA_REGISTRY_URL`` can point at a real Confluent registry without code changes.

Modules: ``errors`` (Confluent error codes), ``canonical`` (parsing and fingerprints),
``compatibility`` (Avro reader/writer rules), ``models`` (tables), ``database`` (engine,
transactions, shared queries), ``levels`` (stored compatibility levels), ``store`` (schemas,
subjects and versions), ``api`` (the REST routes). The platform's clients of a registry are
confluent-kafka's, made in :func:`dataplatform.product_io.serialization.registry_client`.
"""

from dataplatform.registry.errors import RegistryError
from dataplatform.registry.levels import CompatibilityResult
from dataplatform.registry.store import RegisteredVersion, SchemaRegistryStore, StoredSchema

__all__ = ["CompatibilityResult", "RegisteredVersion", "RegistryError", "SchemaRegistryStore", "StoredSchema"]
