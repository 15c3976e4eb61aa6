"""The check that every warning is backed by published figures: a warning's figures are
those of a figures event of its group, published no later than the warning."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from dataplatform.products.envelope import epoch_ms


def assert_warnings_carry_published_figures(figures: Iterable[dict], warnings: Iterable[dict],
                                            group: tuple[str, ...], measures: tuple[str, ...],
                                            latest: bool = False) -> int:
    """For every warning event (change-event records, in their topic's order), a figures event
    of its group (``group`` fields) with the same ``measures``, stamped at or before it;
    with ``latest``, the last such figures event (the figures in force when it was judged).
    The number of warnings checked."""
    published: dict[tuple, list[tuple[int, dict]]] = defaultdict(list)
    for event in figures:
        after = event["after"]
        published[tuple(after[f] for f in group)].append((epoch_ms(after["as_of"]), {m: after[m] for m in measures}))
    checked = 0
    for event in warnings:
        after, at = event["after"], epoch_ms(event["ts_ms"])
        shown = {m: after[m] for m in measures}
        before = [f for t, f in published[tuple(after[f] for f in group)] if t <= at]
        backed = before[-1:] == [shown] if latest else shown in before
        assert backed, (f"{after['severity']} {after['transition']} of {[after[f] for f in group]} at {at} "
                        f"carries {shown}, which no figures event of its group published; before it: {before[-3:]}")
        checked += 1
    return checked
