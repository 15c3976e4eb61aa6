"""The bridges' runtime: HMPPS domain events read from SQS and published as data products (docs/bridges.md)."""
