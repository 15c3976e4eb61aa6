"""The Iceberg sink: every data product delivered as Apache Iceberg tables in a catalog."""
