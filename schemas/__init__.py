"""Data products: their manifests and Avro schemas (one folder per product under
``schemas/<domain>/<name>/``) and the code that loads, validates and versions them."""
