"""Derived data products declared as data: the spec format, its checks, its expressions."""
