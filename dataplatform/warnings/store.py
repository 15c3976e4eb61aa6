"""Warning transitions as operations see them: current warnings and their history.

Rows are written once per Kafka record (unique partition/offset and unique event id), so
re-reading the warnings topic never duplicates a transition; the highest stored offset per
partition is where the follower resumes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (BigInteger, DateTime, Integer, String, UniqueConstraint, create_engine, func,
                        select)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class WarningTransition(Base):
    __tablename__ = "warning_transitions"
    __table_args__ = (UniqueConstraint("kafka_partition", "kafka_offset", name="uq_warning_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    warning_id: Mapped[str] = mapped_column(String(200), index=True)
    area_code: Mapped[str] = mapped_column(String(20))
    area_name: Mapped[str] = mapped_column(String(200))
    area_level: Mapped[str] = mapped_column(String(20))
    rule_id: Mapped[str] = mapped_column(String(100))
    severity: Mapped[str] = mapped_column(String(10))
    transition: Mapped[str] = mapped_column(String(20))
    supply: Mapped[int] = mapped_column(Integer)
    demand: Mapped[int] = mapped_column(Integer)
    horizon_days: Mapped[int] = mapped_column(Integer)
    evidence_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    raised_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    message: Mapped[str] = mapped_column(String(500))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    kafka_partition: Mapped[int] = mapped_column(Integer)
    kafka_offset: Mapped[int] = mapped_column(BigInteger)

    def to_dict(self) -> dict[str, Any]:
        d = {c.name: getattr(self, c.name) for c in self.__table__.columns}
        for k, v in d.items():
            if isinstance(v, dt.datetime):
                d[k] = (v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)).isoformat()
        return d


def _as_datetime(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromtimestamp(value / 1000, tz=dt.timezone.utc)


class WarningStore:
    """Current warnings and history, in the platform's database."""

    def __init__(self, database_url: str | None = None, engine: Engine | None = None) -> None:
        self.engine = engine or create_engine(database_url)  # type: ignore[arg-type]
        Base.metadata.create_all(self.engine)

    def add(self, change_event: dict, partition: int, offset: int) -> WarningTransition | None:
        """Store one warning change event; None if it was already stored."""
        w = change_event["after"] or change_event["before"]
        row = WarningTransition(
            event_id=change_event["source"]["event_id"], warning_id=w["warning_id"],
            area_code=w["area_code"], area_name=w["area_name"], area_level=w["area_level"],
            rule_id=w["rule_id"], severity=w["severity"], transition=w["transition"],
            supply=w["supply"], demand=w["demand"], horizon_days=w["horizon_days"],
            evidence_at=_as_datetime(w["evidence_at"]), raised_at=_as_datetime(w.get("raised_at")),
            message=w["message"], received_at=dt.datetime.now(dt.timezone.utc),
            kafka_partition=partition, kafka_offset=offset,
        )
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                return None
        return row

    def resume_offsets(self) -> dict[int, int]:
        """Next offset to read per partition."""
        with Session(self.engine) as session:
            rows = session.execute(
                select(WarningTransition.kafka_partition, func.max(WarningTransition.kafka_offset))
                .group_by(WarningTransition.kafka_partition)).all()
        return {p: o + 1 for p, o in rows}

    def current(self) -> list[dict]:
        """The latest transition of each warning that is not cleared, most severe first."""
        with Session(self.engine) as session:
            latest = (select(WarningTransition.warning_id, func.max(WarningTransition.id).label("id"))
                      .group_by(WarningTransition.warning_id).subquery())
            rows = session.scalars(select(WarningTransition).join(latest, WarningTransition.id == latest.c.id)
                                   .where(WarningTransition.severity != "NONE")).all()
        order = {"RED": 0, "AMBER": 1}
        return sorted((r.to_dict() for r in rows), key=lambda r: (order.get(r["severity"], 2), r["area_name"]))

    def history(self, limit: int = 200) -> list[dict]:
        with Session(self.engine) as session:
            rows = session.scalars(select(WarningTransition).order_by(WarningTransition.id.desc()).limit(limit)).all()
        return [r.to_dict() for r in rows]
