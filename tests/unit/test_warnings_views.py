"""What the warnings pages are built from: order, history filters and pages, acknowledgements
kept beside warnings (SQLite), times with their zone, charts and tiles, rule explanations."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import create_engine

from dataplatform.warnings.acknowledgements import AcknowledgementError, AcknowledgementStore
from dataplatform.warnings.guidance import explain
from dataplatform.warnings.store import WarningStore
from dataplatform.web.charts import figures_chart, region_severities, region_tiles, sparkline
from dataplatform.web.templating import display_time
from dataplatform.web.warnings_routes import FilterError, history_filter
from tests.support.in_memory import housing_rule

HOUR = 3_600_000
NOW = 1_780_000_000_000


def event(code: str, name: str, severity: str, raised_h_ago: float | None = 1, transition: str = "raised") -> dict:
    w = {"warning_id": f"{code}:shortfall", "area_code": code, "area_name": name, "area_level": "local_authority",
         "rule_id": "shortfall", "severity": severity, "transition": transition, "supply": 1, "demand": 9,
         "horizon_days": 28, "evidence_at": NOW, "message": f"{severity} {transition}  {name}  demand 9 > supply 1",
         "raised_at": None if raised_h_ago is None else NOW - int(raised_h_ago * HOUR)}
    return {"after": w, "before": None, "source": {"event_id": str(uuid.uuid4())}}


@pytest.fixture
def store(tmp_path) -> WarningStore:
    return WarningStore(engine=create_engine(f"sqlite:///{tmp_path / 'w.db'}"))


def add_all(store: WarningStore, events: list[dict]) -> None:
    for offset, e in enumerate(events):
        store.add(e, 0, offset)


def test_current_is_ordered_by_severity_then_longest_raised_then_area(store):
    add_all(store, [event("E1", "Bury", "AMBER", 9), event("E2", "Leeds", "RED", 1), event("E3", "York", "RED", 5),
                    event("E4", "Agley", "RED", 5), event("E5", "Hull", "AMBER", 1),
                    event("E6", "Gone", "RED", 2), event("E6", "Gone", "NONE", None, "cleared")])
    assert [w["area_name"] for w in store.current()] == ["Agley", "York", "Leeds", "Bury", "Hull"]


def test_history_filters_by_area_severity_and_dates_and_pages(store):
    add_all(store, [e for _ in range(30) for e in (event("E08000012", "Liverpool", "RED"), event("E2", "Leeds", "AMBER"))])
    page = store.history_page(history_filter("liver", "red", "", "", "Europe/London"), page=2, page_size=10)
    assert (page.total, page.pages, len(page.rows)) == (30, 3, 10)
    assert {r["area_name"] for r in page.rows} == {"Liverpool"}
    assert store.history_page(history_filter("E2", "", "", "", "UTC")).total == 30      # by area code too
    day = dt.datetime.fromtimestamp(NOW / 1000, dt.timezone.utc).date()
    assert store.history_page(history_filter("", "", day.isoformat(), day.isoformat(), "UTC")).total == 60
    assert store.history_page(history_filter("", "", (day + dt.timedelta(days=1)).isoformat(), "", "UTC")).total == 0


@pytest.mark.parametrize("args, says", [
    (("", "BLUE", "", ""), "not one of RED, AMBER, NONE"),
    (("", "", "1/2/2026", ""), "use YYYY-MM-DD"),
    (("", "", "2026-03-02", "2026-03-01"), "'from' is after 'to'"),
])
def test_bad_history_filters_say_what_and_how_to_fix(args, says):
    with pytest.raises(FilterError, match=says):
        history_filter(*args, "Europe/London")


def test_acknowledgements_are_kept_beside_the_warning_and_never_change_it(store):
    add_all(store, [event("E1", "Bury", "AMBER", 2)])
    acks = AcknowledgementStore(store.engine, store)
    before = store.latest("E1:shortfall")
    ack = acks.add("E1:shortfall", " Sam ", "on it")
    assert (ack["by"], ack["note"], ack["severity"], ack["event_id"]) == ("Sam", "on it", "AMBER", before["event_id"])
    assert store.latest("E1:shortfall") == before and store.history() == [before]
    assert acks.latest_by_warning(["E1:shortfall", "E9:shortfall"]) == {"E1:shortfall": ack}
    assert acks.since(0) == [ack] and acks.since(ack["id"]) == []
    with pytest.raises(AcknowledgementError, match="say who"):
        acks.add("E1:shortfall", "  ")
    with pytest.raises(LookupError, match="no warning"):
        acks.add("nope", "Sam")


def test_times_show_their_zone_in_one_format():
    assert display_time("2026-07-01T10:00:00+00:00") == "1 Jul 2026 11:00 BST"
    assert display_time("2026-01-05T10:00:00") == "5 Jan 2026 10:00 GMT"       # SQLite's naive UTC
    assert display_time("2026-01-05T10:00:00+00:00", "UTC") == "5 Jan 2026 10:00 UTC"
    assert display_time(None) == ""


def test_chart_draws_supply_and_demand_as_step_lines_and_says_so_in_words():
    now = dt.datetime(2026, 3, 29, tzinfo=dt.timezone.utc)
    series = [{"as_of": (now - dt.timedelta(days=d)).isoformat(), "supply": s, "demand": q}
              for d, s, q in ((40, 9, 2), (10, 8, 6), (2, 4, 12))]
    svg = figures_chart(series, days=28, now=now)
    assert svg.count('class="supply"') == 1 and svg.count('class="demand"') == 1
    assert "2 change(s); now supply 4, demand 12" in svg       # the one from 40 days ago only sets the start
    assert "<title>" in svg and "cdn" not in svg.lower()
    assert sparkline(series, now=now).count("<path") == 2
    assert "No figures" in figures_chart([], now=now)
    marked = figures_chart(series, days=28, now=now, transitions=[
        {"at": (now - dt.timedelta(days=d)).isoformat(), "severity": severity, "transition": transition}
        for d, severity, transition in ((40, "RED", "raised"), (5, "RED", "raised"), (1, "AMBER", "deescalated"))])
    assert marked.count('class="transition"') == 2 and 'data-transition="AMBER deescalated"' in marked   # 40 days: outside
    assert "2 warning transition(s) marked" in marked and "warning transitions" not in svg


def test_tiles_take_each_regions_worst_warning_from_its_local_authorities():
    current = [{"area_code": "E08000012", "severity": "AMBER"}, {"area_code": "E08000003", "severity": "RED"},
               {"area_code": "E12000007", "severity": "AMBER"}]
    worst = region_severities(current)
    assert worst == {"E12000002": "RED", "E12000007": "AMBER"}
    svg = region_tiles(worst)
    assert 'data-region="E12000002" data-severity="RED"' in svg
    assert 'data-region="E12000001" data-severity="NONE"' in svg and svg.count('class="tile"') == 10


def test_rules_are_explained_from_their_thresholds():
    guide = explain(housing_rule(id="shortfall", min_need=5, amber_below=1.2, clear_margin=0.1, clear_after=2))
    assert "less than 20%" in guide.amber and "fewer than 12 homes for 10 people" in guide.amber
    assert "fewer than 5 people" in guide.minimum
    assert "1.3 × demand" in guide.stepping_down and "2 evaluations in a row" in guide.stepping_down
    assert guide.stepping_down.startswith("A warning steps up at once")
    assert guide.runbook_html and "<h3>" in guide.runbook_html
    held = explain(housing_rule(id="shortfall", clear_after=1, raise_for="15s", keep_for="2m")).stepping_down
    assert held.startswith("A warning steps up once the figures have called for it for 15s but steps down slowly")
    assert "for one evaluation and for 2m." in held


def test_a_team_can_point_the_pages_at_its_own_runbooks(tmp_path, monkeypatch):
    from dataplatform.config import get_settings
    from dataplatform.warnings.guidance import runbook_html

    (tmp_path / "shortfall.md").write_text("Call **the duty manager** on 0100.")
    monkeypatch.setenv("WARNINGS_RUNBOOK_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert runbook_html("shortfall") == "<p>Call <strong>the duty manager</strong> on 0100.</p>\n"
        assert runbook_html("no-such-rule") is None
        assert runbook_html("../../etc/shortfall.md") == runbook_html("shortfall.md")   # the folder's file only
        link = runbook_html("https://runbooks.example/shortfall?a=1&b=2")
        assert 'href="https://runbooks.example/shortfall?a=1&amp;b=2"' in link
        assert explain(housing_rule(id="other", runbook="shortfall.md")).runbook_html == runbook_html("shortfall")
    finally:
        get_settings.cache_clear()
