"""Helpers shared by the tests: waiting on conditions with deadlines, reading topics."""
