"""The ``dataplatform`` command line: one Typer app, one module per command group."""

from dataplatform.cli.main import app, console_script

__all__ = ["app", "console_script"]
