"""Sink connectors that keep data products in SQL tables and Parquet files for analysts."""
