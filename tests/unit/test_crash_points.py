"""Crash plans (dataplatform/crash_points.py): a worker that stops before its armed point,
for example on a failed step, gives its plan back to the next worker."""

from __future__ import annotations

from dataplatform import crash_points


def test_a_plan_not_reached_goes_back_to_the_next_worker(tmp_path, monkeypatch):
    (tmp_path / "000.plan").write_text("commit.before 2\n")
    monkeypatch.setenv(crash_points.PLAN_ENV, str(tmp_path))
    monkeypatch.setattr(crash_points, "_armed", None)
    assert crash_points.arm_from_environment() == ("commit.before", 2)
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == ["000.claimed"]
    crash_points.give_back()
    assert [p.name for p in tmp_path.iterdir()] == ["000.plan"]
    assert crash_points.arm_from_environment() == ("commit.before", 2)   # the next worker takes it
    crash_points.give_back()
