"""The ``dataplatform`` command line: one Typer app, one module per command group."""

from dataplatform.cli.main import app

__all__ = ["app"]
