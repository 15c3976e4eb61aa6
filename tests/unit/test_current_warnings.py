"""The current warnings behind /api/warnings and the live page: kept in memory, fresh after a change."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import event

from dataplatform.config import Settings
from dataplatform.web import warnings_view
from dataplatform.web.app import create_app
from tests.support.warnings import warning


def test_current_warnings_are_served_from_memory_and_read_again_after_a_change(tmp_path: Path, monkeypatch):
    """/api/warnings answers from memory (no query per request), yet a transition or an
    acknowledgement stored by this process shows at once."""
    monkeypatch.setattr(warnings_view, "CURRENT_MAX_AGE_S", 600.0)   # however slow the host, no expiry here
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}"))
    store, view = app.state.warning_store, app.state.warnings_view
    with TestClient(app) as client:
        assert client.get("/api/warnings").json() == []
        store.add({"before": None, "after": warning(), "source": {"event_id": "e1"}}, 0, 0)
        (row,) = client.get("/api/warnings").json()
        assert row["warning_id"] == warning()["warning_id"] and row["acknowledgement"] is None
        queries: list[str] = []
        event.listen(store.engine, "before_cursor_execute", lambda *args: queries.append(args[2]))
        for _ in range(20):
            assert client.get("/api/warnings").json()[0]["warning_id"] == row["warning_id"]
        assert queries == []
        view.acks.add(row["warning_id"], "Sam")
        assert client.get("/api/warnings").json()[0]["acknowledgement"]["by"] == "Sam"
