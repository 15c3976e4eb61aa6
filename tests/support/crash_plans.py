"""Crash plans for a test: the points at which a component kills itself, in turn (the plan
files that ``dataplatform/crash_points.py`` claims one by one)."""

from __future__ import annotations

from pathlib import Path


def write_plan(folder: Path, plan: list[tuple[str, int]]) -> Path:
    """``folder`` holding one plan file per ``(point, nth time)``, claimed in this order."""
    folder.mkdir(parents=True)
    for i, (point, n) in enumerate(plan):
        (folder / f"{i:03d}.plan").write_text(f"{point} {n}\n")
    return folder
