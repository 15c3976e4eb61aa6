"""Benchmarks: each against a baseline in the same run; `.venv/bin/python -m bench.<name>`."""
