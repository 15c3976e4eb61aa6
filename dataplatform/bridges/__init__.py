"""Bridge specs: HMPPS domain events on an SQS queue declared as a data product's change events (docs/bridges.md)."""
