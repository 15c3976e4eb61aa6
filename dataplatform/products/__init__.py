"""The product model: manifests, entity schemas, the change-event envelope, validation and
versioning, and the reference data, read from the data product folders under ``schemas/``."""
