"""Terminal tables that keep names whole.

A product or topic name cut to ``prison_rele…`` is useless: it cannot be copied into the
next command. So the columns that hold names never wrap or shrink; when the terminal is
too narrow, the least important other columns are dropped (and the table says which,
pointing at ``--json``), and what remains wraps at word boundaries; narrower still than the
name columns themselves, each record is printed as a block of ``header: value`` lines.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

BORDER_PER_COLUMN, BORDER = 3, 1  # rich's default box: "│ x " per column plus the closing "│"


def _longest_word(values: Sequence[str]) -> int:
    return max((len(w) for v in values for w in v.split()), default=0)


def fitted_table(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int, *,
                 whole: Sequence[str], drop_order: Sequence[str]) -> tuple[Table, list[str]]:
    """A table for ``width`` columns: ``whole`` columns at full width; columns in
    ``drop_order`` (first dropped first) removed until the rest fits. Returns it and the dropped names."""
    columns = {h: [str(r[i]) for r in rows] for i, h in enumerate(headers)}

    def need(h: str) -> int:
        values = columns[h] + [h]
        return max(map(len, values)) if h in whole else _longest_word(values)

    kept = list(headers)
    dropped: list[str] = []
    for candidate in drop_order:
        if sum(need(h) for h in kept) + BORDER_PER_COLUMN * len(kept) + BORDER <= width:
            break
        kept.remove(candidate)
        dropped.append(candidate)
    table = Table()
    for h in kept:
        if h in whole:
            table.add_column(h, no_wrap=True, min_width=need(h))
        else:
            table.add_column(h, overflow="fold")
    for r in rows:
        table.add_row(*(str(r[headers.index(h)]) for h in kept))
    return table, dropped


def print_fitted(console: Console, headers: Sequence[str], rows: Sequence[Sequence[str]], *,
                 whole: Sequence[str], drop_order: Sequence[str]) -> None:
    """The fitted table; when even the name columns side by side are wider than the terminal,
    one record per block instead (its first column, then ``header: value`` lines), each line
    printed whole for the terminal to wrap, so no name is ever cut."""
    table, dropped = fitted_table(headers, rows, console.width, whole=whole, drop_order=drop_order)
    kept = [h for h in headers if h not in dropped]
    names = {h: max(len(h), *(len(str(r[headers.index(h)])) for r in rows)) for h in whole if h in kept} if rows else {}
    if sum(names.values()) + BORDER_PER_COLUMN * len(names) + BORDER > console.width:
        for r in rows:
            console.print(str(r[0]), style="bold", soft_wrap=True, highlight=False)
            for h in headers[1:]:
                console.print(f"  {h}: {r[headers.index(h)]}", soft_wrap=True, highlight=False)
        return
    console.print(table)
    if dropped:
        console.print(f"(hidden at this width: {', '.join(dropped)}; see --json)", style="dim")
