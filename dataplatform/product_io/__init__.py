"""The product I/O layer: how a data product's events look on Kafka, in one place.

- :mod:`~dataplatform.product_io.wire`: the Confluent wire framing (magic byte, schema id);
- :mod:`~dataplatform.product_io.names`: the value subject and dead-letter topic of a topic;
- :mod:`~dataplatform.product_io.serialization`: registry clients and each product's serde;
- :mod:`~dataplatform.product_io.dead_letters`: where records nobody can read go, and why.

It sits below the application (CLI, web, warnings, processor, sinks) and imports none of it.
"""
