"""``--help`` without noise: flags are listed bare, as people type them.

Typer (0.2x) prints the value type beside every option, which reads well for
``--duration <float>`` but turns an on/off flag into ``--fresh <bool>``, as if it took a
value. Flags take none, so their type column is left empty; every other option keeps it.
"""

from __future__ import annotations

from typer.core import TyperOption

_type_of = TyperOption.display_type_rich


def _flag_without_type(self: TyperOption, ctx):  # noqa: ANN001 - click's Context
    return None if self.is_flag else _type_of(self, ctx)


def quiet_flag_types() -> None:
    """Install once, before ``--help`` is rendered (the CLI's entry point does it on import)."""
    TyperOption.display_type_rich = _flag_without_type
