"""The catalogue: find data products by name, description, tag or field, see their
lineage, freshness and consumers. Pages and JSON API live in ``dataplatform.web``."""
