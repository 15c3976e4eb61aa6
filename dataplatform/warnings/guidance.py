"""What a warning means and what to do about it: each rule in words, and its runbook.

The page explains the rules from the same derivation specs the processors evaluate, so the
words cannot drift from the thresholds. Each rule names its runbook in its spec
(``runbook:``): a Markdown file in the runbook folder (``runbooks/``, shipped with the
package; ``WARNINGS_RUNBOOK_DIR`` points at a team's own folder instead), or a link to a
runbook kept elsewhere. Without one, ``<rule id>.md`` is looked for.
"""

from __future__ import annotations

import dataclasses
import math
from html import escape
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from markdown_it import MarkdownIt

from dataplatform.config import get_settings
from dataplatform.derivations.loading import load_derivations
from dataplatform.derivations.spec import Rule, duration_ms

RUNBOOKS = Path(__file__).with_name("runbooks")


@dataclass(frozen=True)
class RuleGuide:
    rule: Rule
    red: str
    amber: str
    minimum: str
    stepping_down: str
    runbook_html: str | None
    warnings_product: str = ""   # the product its warnings are published on

    @property
    def id(self) -> str:
        return self.rule.id


def _percent(ratio: float) -> str:
    return f"{round((ratio - 1) * 100):d}%"


def _held(duration: str, words: str, at_once: str = "at once") -> str:
    """A rule's hold (``raise_for``, ``keep_for``) in words: ``words 30s``, or ``at_once`` for none."""
    return at_once if duration_ms(duration) == 0 else f"{words} {duration}"


def explain(rule: Rule, groups: str = "groups") -> RuleGuide:
    """``rule`` in words; ``groups`` is what its spec's groups are called (``groups.noun``)."""
    have, need = rule.have.source, rule.need.source
    have_unit, need_unit = rule.have_unit or have, rule.need_unit or need
    cover = f"less {have} than {need}" if rule.red_below == 1.0 else f"{have} below {rule.red_below:g} × {need}"
    consequence = f": {rule.consequence}" if rule.consequence else ""
    clear_at = rule.amber_below + rule.clear_margin
    evaluations = "one evaluation" if rule.clear_after == 1 else f"{rule.clear_after} evaluations in a row"
    return RuleGuide(
        rule=rule,
        red=f"RED: {cover} over the next {rule.horizon_days} days{consequence}.",
        amber=(f"AMBER: {have} covers {need}, but by less than {_percent(rule.amber_below)} ({have} below "
               f"{rule.amber_below:g} × {need}, e.g. fewer than {math.ceil(10 * rule.amber_below)} {have_unit} "
               f"for 10 {need_unit})." if rule.amber_below > rule.red_below else "AMBER: not used by this rule."),
        minimum=(f"{groups.capitalize()} where fewer than {rule.min_need:g} "
                 f"{rule.need_phrase or need_unit} in the window are not judged: too few to say anything "
                 "reliable, so any warning there is cleared."),
        stepping_down=(f"A warning steps up {_held(rule.raise_for, 'once the figures have called for it for')} "
                       f"but steps down slowly: only once {have} has stayed at or above "
                       f"{clear_at:g} × {need} (a further {round(rule.clear_margin * 100)} points of cover) for "
                       f"{evaluations}{_held(rule.keep_for, ' and for', '')}. A figure hovering at a threshold "
                       "therefore does not flap between colours."),
        runbook_html=runbook_html(rule.runbook or f"{rule.id}.md"),
    )


def runbook_html(runbook: str) -> str | None:
    """The runbook as HTML: a link, or the Markdown file of that name in the runbook folder
    (a bare rule id means ``<id>.md``); None when there is no such file."""
    if runbook.startswith(("https://", "http://")):
        return f'<p><a class="govuk-link" href="{escape(runbook)}">Open the runbook</a> ({escape(runbook)})</p>\n'
    folder = get_settings().warnings_runbook_dir or RUNBOOKS
    name = Path(runbook).name   # a file of the folder, never a path elsewhere
    path = folder / (name if name.endswith(".md") else f"{name}.md")
    if not path.is_file():
        return None
    return MarkdownIt("commonmark", {"html": False}).render(path.read_text())


@lru_cache(maxsize=1)
def guides() -> tuple[RuleGuide, ...]:
    """Every rule of every derivation, explained."""
    return tuple(dataclasses.replace(explain(r, derivation.groups.noun), warnings_product=derivation.warnings.product)
                 for derivation in load_derivations().values() for r in derivation.rules)
