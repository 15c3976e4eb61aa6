"""Data products: one folder per product under ``schemas/<domain>/<name>/`` (manifest and
Avro schema) and reference data under ``schemas/reference/``. The code that loads, validates
and versions them is :mod:`dataplatform.products`."""
