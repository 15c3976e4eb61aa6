"""Warning transitions as operations see them: current warnings and their history.

Every kind of warning (one warnings product per derivation spec) lands in one table: the
columns every kind shares (group, severity, what the rule has and needs, times) for ordering
and filtering, and the record exactly as published for the pages, the API and webhooks.
Rows are written once per Kafka record (unique product/partition/offset and unique event id),
so re-reading a warnings topic never duplicates a transition; the highest stored offset per
product and partition is where the follower resumes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (JSON, BigInteger, DateTime, Float, Integer, String, UniqueConstraint, create_engine, func,
                        inspect, select, text)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from dataplatform.products.envelope import entity_of, event_id_of, from_epoch_ms
from dataplatform.warnings.kinds import WarningKind, plain, recognise


class Base(DeclarativeBase):
    pass


class WarningTransition(Base):
    __tablename__ = "warning_history"
    __table_args__ = (UniqueConstraint("product", "kafka_partition", "kafka_offset", name="uq_warning_history_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    product: Mapped[str] = mapped_column(String(200), index=True)      # the warnings product it came from
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    warning_id: Mapped[str] = mapped_column(String(300), index=True)
    group_code: Mapped[str] = mapped_column(String(250))
    group_name: Mapped[str] = mapped_column(String(300))
    group_level: Mapped[str] = mapped_column(String(100))
    rule_id: Mapped[str] = mapped_column(String(100))
    severity: Mapped[str] = mapped_column(String(10))
    transition: Mapped[str] = mapped_column(String(20))
    have: Mapped[float | None] = mapped_column(Float, nullable=True)
    need: Mapped[float | None] = mapped_column(Float, nullable=True)
    horizon_days: Mapped[int] = mapped_column(Integer)
    evidence_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    raised_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    message: Mapped[str] = mapped_column(String(500))
    record: Mapped[dict] = mapped_column(JSON)      # the warning as published (its own field names), and
    #                                                 transition_at: when the processor judged it (the event's ts_ms)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    kafka_partition: Mapped[int] = mapped_column(Integer)
    kafka_offset: Mapped[int] = mapped_column(BigInteger)

    def to_dict(self) -> dict[str, Any]:
        """The record as published, then the shared columns (times in ISO 8601)."""
        d = {c.name: getattr(self, c.name) for c in self.__table__.columns if c.name != "record"}
        d["have"], d["need"] = _number(self.have), _number(self.need)
        return {**(self.record or {}), **{k: iso(v) if isinstance(v, dt.datetime) else v for k, v in d.items()}}


def _number(value: float | None) -> float | int | None:
    return int(value) if value is not None and float(value).is_integer() else value


def as_datetime(value: Any) -> dt.datetime | None:
    """A timestamp from Avro (epoch milliseconds or a datetime) as an aware datetime."""
    if value is None or isinstance(value, dt.datetime):
        return value
    return from_epoch_ms(value)


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands datetimes back without their zone, so UTC is assumed."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).isoformat()


SEVERITY_ORDER = {"RED": 0, "AMBER": 1, "NONE": 2}


def display_order(w: dict) -> tuple:
    """Most severe first, then raised longest ago, then group: the order on the page, live too."""
    return (SEVERITY_ORDER.get(w["severity"], 3), w.get("raised_at") or w["evidence_at"], w["group_name"], w["warning_id"])


@dataclass(frozen=True)
class HistoryFilter:
    """What the history page asks for; empty fields do not filter."""

    area: str = ""          # part of a group's name, or its code (an area, a court, ...)
    severity: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def where(self) -> list:
        clauses = []
        if self.area:
            clauses.append(WarningTransition.group_name.ilike(f"%{self.area}%") | (WarningTransition.group_code == self.area))
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
        self.version = 0   # bumped by every transition stored here: what caches of the current warnings watch
        Base.metadata.create_all(self.engine)
        _keep_history_of_one_product_tables(self.engine)

    def add(self, change_event: dict, partition: int, offset: int,
            kind: WarningKind | None = None) -> WarningTransition | None:
        """Store one warning change event of ``kind`` (by default, the kind whose fields it has);
        None if it was already stored."""
        w = entity_of(change_event)
        kind = kind or recognise(w)
        if kind is None:
            raise ValueError(f"warning {w.get('warning_id')!r} has the fields of no warnings product's spec: "
                             f"{', '.join(sorted(w))}")
        row = WarningTransition(
            event_id=event_id_of(change_event), warning_id=w["warning_id"],
            **kind.row(w), rule_id=w["rule_id"], severity=w["severity"], transition=w["transition"],
            horizon_days=w["horizon_days"], evidence_at=as_datetime(w["evidence_at"]),
            raised_at=as_datetime(w.get("raised_at")), message=w["message"],
            record={**{k: plain(v) for k, v in w.items()}, "transition_at": iso(as_datetime(change_event.get("ts_ms")))},
            received_at=dt.datetime.now(dt.timezone.utc),
            kafka_partition=partition, kafka_offset=offset,
        )
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                return None
        self.version += 1
        return row

    def resume_offsets(self, product: str) -> dict[int, int]:
        """Next offset to read per partition of ``product``'s topic."""
        with Session(self.engine) as session:
            rows = session.execute(
                select(WarningTransition.kafka_partition, func.max(WarningTransition.kafka_offset))
                .where(WarningTransition.product == product).group_by(WarningTransition.kafka_partition)).all()
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


#: The table of releases that followed one warnings product (housing's) only.
ONE_PRODUCT_TABLE, ONE_PRODUCT = "warning_transitions", "housing_shortfall_warnings"


def _keep_history_of_one_product_tables(engine: Engine) -> None:
    """Copy the transitions a database kept before warnings of every kind shared one table
    (once: only into an empty table), so an upgrade loses no history and resumes where it was."""
    if ONE_PRODUCT_TABLE not in inspect(engine).get_table_names():
        return
    with Session(engine) as session:
        if session.scalar(select(func.count(WarningTransition.id))):
            return
        old = session.execute(text(f"SELECT * FROM {ONE_PRODUCT_TABLE} ORDER BY id")).mappings().all()
        for r in old:
            record = {k: r[k] for k in ("warning_id", "area_code", "area_name", "area_level", "rule_id", "severity",
                                        "transition", "supply", "demand", "horizon_days", "message")}
            record.update(evidence_at=iso(_aware(r["evidence_at"])), raised_at=iso(_aware(r["raised_at"])))
            session.add(WarningTransition(
                id=r["id"], product=ONE_PRODUCT, event_id=r["event_id"], warning_id=r["warning_id"],
                group_code=r["area_code"], group_name=r["area_name"], group_level=r["area_level"], rule_id=r["rule_id"],
                severity=r["severity"], transition=r["transition"], have=r["supply"], need=r["demand"],
                horizon_days=r["horizon_days"], evidence_at=_aware(r["evidence_at"]), raised_at=_aware(r["raised_at"]),
                message=r["message"], record=record, received_at=_aware(r["received_at"]),
                kafka_partition=r["kafka_partition"], kafka_offset=r["kafka_offset"]))
        session.commit()
        if old and engine.dialect.name == "postgresql":   # ids were given: move the sequence past them
            session.execute(text(f"SELECT setval(pg_get_serial_sequence('{WarningTransition.__tablename__}', 'id'), "
                                 f"(SELECT max(id) FROM {WarningTransition.__tablename__}))"))
            session.commit()


def _aware(value: Any) -> dt.datetime | None:
    """A stored time as an aware datetime (SQLite hands them back as naive UTC, or as text)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.timezone.utc) if value is not None and value.tzinfo is None else value
