"""Acknowledgements: a person saying "I have seen this warning and I am on it".

An acknowledgement is kept beside the warning, never in it: the warning's transitions are
facts from the warnings data product and stay exactly as the processor published them,
while acknowledgements (who, when, a note) are the operations team's own record, in the
same database, shown to everyone who opens the page. Each one names the transition it
acknowledged, so the page can tell "acknowledged at RED" from an ack of an older AMBER.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from dataplatform.config import shown
from dataplatform.warnings.store import Base, WarningStore, iso

MAX_NAME = 100
MAX_NOTE = 2000


class AcknowledgementError(ValueError):
    """An acknowledgement that cannot be stored; the message says which field and why."""


class Acknowledgement(Base):
    __tablename__ = "warning_acknowledgements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    warning_id: Mapped[str] = mapped_column(String(200), index=True)
    event_id: Mapped[str] = mapped_column(String(64))      # the transition acknowledged
    severity: Mapped[str] = mapped_column(String(10))      # its severity, for "acknowledged at RED"
    by: Mapped[str] = mapped_column(String(MAX_NAME))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "warning_id": self.warning_id, "event_id": self.event_id, "severity": self.severity,
                "by": self.by, "note": self.note, "at": iso(self.at)}


class AcknowledgementStore:
    def __init__(self, engine: Engine, warnings: WarningStore) -> None:
        self.engine, self.warnings = engine, warnings
        self.version = 0   # bumped by every acknowledgement made here: what caches of the current warnings watch
        Base.metadata.create_all(engine)

    def add(self, warning_id: str, by: str, note: str = "") -> dict:
        """Acknowledge the warning's latest transition; raises :class:`AcknowledgementError` or LookupError."""
        by, note = (by or "").strip(), (note or "").strip()
        if not by:
            raise AcknowledgementError("'by' is empty: say who is acknowledging (a name or team)")
        if len(by) > MAX_NAME or len(note) > MAX_NOTE:
            raise AcknowledgementError(f"'by' is at most {MAX_NAME} characters and 'note' at most {MAX_NOTE}")
        latest = self.warnings.latest(warning_id)
        if latest is None:
            raise LookupError(f"no warning {shown(warning_id)}: see /api/warnings for current warning ids")
        row = Acknowledgement(warning_id=warning_id, event_id=latest["event_id"], severity=latest["severity"],
                              by=by, note=note, at=dt.datetime.now(dt.timezone.utc))
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(row)
            session.commit()
        self.version += 1
        return row.to_dict()

    def for_warning(self, warning_id: str) -> list[dict]:
        """Every acknowledgement of one warning, newest first."""
        with Session(self.engine) as session:
            rows = session.scalars(select(Acknowledgement).where(Acknowledgement.warning_id == warning_id)
                                   .order_by(Acknowledgement.id.desc())).all()
        return [r.to_dict() for r in rows]

    def latest_by_warning(self, warning_ids: list[str]) -> dict[str, dict]:
        """The newest acknowledgement of each warning that has one."""
        if not warning_ids:
            return {}
        with Session(self.engine) as session:
            rows = session.scalars(select(Acknowledgement).where(Acknowledgement.warning_id.in_(warning_ids))
                                   .order_by(Acknowledgement.id)).all()
        return {r.warning_id: r.to_dict() for r in rows}

    def since(self, after_id: int) -> list[dict]:
        """Acknowledgements newer than ``after_id``, oldest first (for the live stream)."""
        with Session(self.engine) as session:
            rows = session.scalars(select(Acknowledgement).where(Acknowledgement.id > after_id)
                                   .order_by(Acknowledgement.id)).all()
        return [r.to_dict() for r in rows]

    def last_id(self) -> int:
        with Session(self.engine) as session:
            return session.scalar(select(Acknowledgement.id).order_by(Acknowledgement.id.desc()).limit(1)) or 0
