"""Warning transitions as operations see them: current warnings and their history.

Rows are written once per Kafka record (unique partition/offset and unique event id), so
re-reading the warnings topic never duplicates a transition; the highest stored offset per
partition is where the follower resumes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
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
        return {k: iso(v) if isinstance(v, dt.datetime) else v for k, v in d.items()}


def as_datetime(value: Any) -> dt.datetime | None:
    """A timestamp from Avro (epoch milliseconds or a datetime) as an aware datetime."""
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromtimestamp(value / 1000, tz=dt.timezone.utc)


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands datetimes back without their zone, so UTC is assumed."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).isoformat()


SEVERITY_ORDER = {"RED": 0, "AMBER": 1, "NONE": 2}


def display_order(w: dict) -> tuple:
    """Most severe first, then raised longest ago, then area: the order on the page, live too."""
    return (SEVERITY_ORDER.get(w["severity"], 3), w.get("raised_at") or w["evidence_at"], w["area_name"], w["warning_id"])


@dataclass(frozen=True)
class HistoryFilter:
    """What the history page asks for; empty fields do not filter."""

    area: str = ""
    severity: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def where(self) -> list:
        clauses = []
        if self.area:
            clauses.append(WarningTransition.area_name.ilike(f"%{self.area}%") | (WarningTransition.area_code == self.area))
        if self.severity:
            clauses.append(WarningTransition.severity == self.severity)
        if self.since:
            clauses.append(WarningTransition.evidence_at >= self.since)
        if self.until:
            clauses.append(WarningTransition.evidence_at < self.until)
        return clauses


@dataclass
class HistoryPage:
    rows: list[dict]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


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
            evidence_at=as_datetime(w["evidence_at"]), raised_at=as_datetime(w.get("raised_at")),
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
        return sorted((r.to_dict() for r in rows), key=display_order)

    def latest(self, warning_id: str) -> dict | None:
        """The latest transition of one warning (cleared or not)."""
        with Session(self.engine) as session:
            row = session.scalars(select(WarningTransition).where(WarningTransition.warning_id == warning_id)
                                  .order_by(WarningTransition.id.desc()).limit(1)).first()
        return row.to_dict() if row else None

    def history(self, limit: int = 200, where: HistoryFilter | None = None, page: int = 1) -> list[dict]:
        """Transitions, newest first, ``limit`` a page."""
        return self.history_page(where or HistoryFilter(), page, limit).rows

    def history_page(self, where: HistoryFilter, page: int = 1, page_size: int = 50) -> HistoryPage:
        clauses = where.where()
        with Session(self.engine) as session:
            total = session.scalar(select(func.count(WarningTransition.id)).where(*clauses)) or 0
            rows = session.scalars(select(WarningTransition).where(*clauses).order_by(WarningTransition.id.desc())
                                   .offset((max(page, 1) - 1) * page_size).limit(page_size)).all()
        return HistoryPage([r.to_dict() for r in rows], total, max(page, 1), page_size)
