"""Each area's supply and demand over time: the evidence behind a warning.

The derived product ``area_supply_demand`` is compacted (it holds each area's *current*
figures), so the history operations need ("how did Liverpool get here?") is kept by the
web service itself: every figures change event it reads becomes one row here, with the
figures before and after, so a warning's page can chart them and list what moved them.
Rows are unique per Kafka position, so re-reading the topic adds nothing twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, String, UniqueConstraint, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from dataplatform.products.envelope import event_id_of
from dataplatform.warnings.store import Base, as_datetime, iso


class AreaFigures(Base):
    __tablename__ = "area_figures"
    __table_args__ = (UniqueConstraint("kafka_partition", "kafka_offset", name="uq_area_figures_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    area_code: Mapped[str] = mapped_column(String(20), index=True)
    area_name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(20))
    supply: Mapped[int] = mapped_column(Integer)
    demand: Mapped[int] = mapped_column(Integer)
    supply_before: Mapped[int | None] = mapped_column(Integer, nullable=True)
    demand_before: Mapped[int | None] = mapped_column(Integer, nullable=True)
    as_of: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    event_id: Mapped[str] = mapped_column(String(64))
    kafka_partition: Mapped[int] = mapped_column(Integer)
    kafka_offset: Mapped[int] = mapped_column(BigInteger)

    def to_dict(self) -> dict[str, Any]:
        return {"area_code": self.area_code, "area_name": self.area_name, "supply": self.supply,
                "demand": self.demand, "supply_before": self.supply_before, "demand_before": self.demand_before,
                "as_of": iso(self.as_of), "event_id": self.event_id}


class FiguresStore:
    """Area figures over time, in the same database as the warnings."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        Base.metadata.create_all(engine)

    def add(self, change_event: dict, partition: int, offset: int) -> AreaFigures | None:
        after, before = change_event.get("after"), change_event.get("before") or {}
        if after is None:  # a deleted area: nothing to chart
            return None
        row = AreaFigures(area_code=after["area_code"], area_name=after["area_name"], region_code=after["region_code"],
                          supply=after["supply"], demand=after["demand"], supply_before=before.get("supply"),
                          demand_before=before.get("demand"), as_of=as_datetime(after["as_of"]),
                          event_id=event_id_of(change_event), kafka_partition=partition, kafka_offset=offset)
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                return None
        return row

    def resume_offsets(self) -> dict[int, int]:
        with Session(self.engine) as session:
            rows = session.execute(select(AreaFigures.kafka_partition, func.max(AreaFigures.kafka_offset))
                                   .group_by(AreaFigures.kafka_partition)).all()
        return {p: o + 1 for p, o in rows}

    def series(self, area_code: str, since: dt.datetime | None = None, limit: int = 5000) -> list[dict]:
        """The area's figures, oldest first (the newest ``limit`` changes since ``since``)."""
        query = select(AreaFigures).where(AreaFigures.area_code == area_code)
        if since is not None:
            query = query.where(AreaFigures.as_of >= since)
        with Session(self.engine) as session:
            rows = session.scalars(query.order_by(AreaFigures.as_of.desc(), AreaFigures.id.desc()).limit(limit)).all()
        return [r.to_dict() for r in reversed(rows)]
