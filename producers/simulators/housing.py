"""A simulated housing service: social housing units in its own SQLite database, every
change published through the transactional outbox.

Units are added (available, or void awaiting repairs), reserved for someone, let, become
void when a tenancy ends, and available again after repairs. Each change updates the
``housing_units`` row and records the change event in ``outbox_events`` in one
transaction; an :class:`~dataplatform.producers.outbox_relay.OutboxRelay` thread publishes them. The RNG is
seeded, so the sequence of changes is the same for the same seed and starting database.
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
import threading
import time
from pathlib import Path

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Engine, Integer, Numeric, String, create_engine, event, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from dataplatform.config import Settings, get_settings
from dataplatform.producers.outbox import create_outbox_table, record_change
from dataplatform.producers.outbox_relay import OutboxRelay
from dataplatform.producers.publisher import Publisher
from dataplatform.producers.simulators.scenarios import (DEFAULT_RATE, Progress, SimulationReport, Step, random_steps, run_steps,
                                            scenario_plan)
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import DataProduct, get_product
from dataplatform.products.reference import local_authorities

PRODUCT = "social_housing_availability"
SOURCE_SYSTEM = "housing-service"
ASSOCIATIONS = ("Riverside", "Onward Homes", "Places for People", "Clarion Housing", "Sanctuary", "Home Group")
#: Which states a unit moves to next, with weights.
TRANSITIONS = {
    "available": (("reserved", 6), ("void", 1)),
    "reserved": (("let", 6), ("available", 2)),
    "let": (("void", 1),),
    "void": (("available", 1),),
}
PENNY = decimal.Decimal("0.01")


class HousingBase(DeclarativeBase):
    """The housing service's own tables."""


class HousingUnitRow(HousingBase):
    __tablename__ = "housing_units"

    unit_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    local_authority_code: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(String(16), index=True)
    provider: Mapped[str] = mapped_column(String(120))
    bedrooms: Mapped[int] = mapped_column(Integer)
    accessible: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16), index=True)
    available_from: Mapped[dt.date] = mapped_column(Date)
    weekly_rent: Mapped[decimal.Decimal | None] = mapped_column(Numeric(8, 2), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    position: Mapped[int] = mapped_column(BigInteger, doc="Source position of the last change (grows per unit).")

    def entity(self) -> dict:
        updated = self.updated_at if self.updated_at.tzinfo else self.updated_at.replace(tzinfo=dt.UTC)
        return {"unit_id": self.unit_id, "local_authority_code": self.local_authority_code,
                "region_code": self.region_code, "provider": self.provider, "bedrooms": self.bedrooms,
                "accessible": self.accessible, "status": self.status, "available_from": self.available_from,
                "weekly_rent": None if self.weekly_rent is None else decimal.Decimal(self.weekly_rent).quantize(PENNY),
                "updated_at": updated.replace(microsecond=updated.microsecond // 1000 * 1000)}


def housing_engine(database: Path | str) -> Engine:
    """SQLite with WAL and a generous busy timeout: the simulator and its relay share it."""
    engine = create_engine(f"sqlite:///{database}", connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _wal(dbapi_conn, _record) -> None:  # noqa: ANN001
        dbapi_conn.execute("PRAGMA journal_mode=WAL")

    HousingBase.metadata.create_all(engine)
    create_outbox_table(engine)
    return engine


class HousingService:
    """The business side: applies steps to ``housing_units`` and records their events."""

    def __init__(self, engine: Engine, product: DataProduct, seed: int) -> None:
        self.engine = engine
        self.product = product
        self.rng = random.Random(f"housing:{seed}")
        self.areas = sorted(local_authorities())

    def apply(self, step: Step) -> None:
        with Session(self.engine) as session, session.begin():
            if step.action == "add_unit":
                self._add(session, str(step.arg("area")), str(step.arg("status", "available")))
            elif step.action == "let_unit":
                self._let_in_region(session, str(step.arg("region")))
            else:
                self._random(session, step.arg("exclude_region"))

    # -- changes ------------------------------------------------------------------
    def _add(self, session: Session, area_code: str, status: str) -> None:
        area = local_authorities()[area_code]
        number = (session.scalar(select(func.count()).select_from(HousingUnitRow)) or 0) + 1
        provider = (f"{area.local_authority_name} Council" if self.rng.random() < 0.5
                    else self.rng.choice(ASSOCIATIONS))
        rent = None if self.rng.random() < 0.1 else (decimal.Decimal(self.rng.randint(7000, 16000)) / 100)
        row = HousingUnitRow(
            unit_id=f"HU-{number:06d}", local_authority_code=area_code, region_code=area.region_code,
            provider=provider, bedrooms=self.rng.choice((1, 1, 2, 2, 3, 4)), accessible=self.rng.random() < 0.15,
            status=status, available_from=dt.date.today() + dt.timedelta(days=self.rng.randint(0, 21)),
            weekly_rent=rent, updated_at=_now(), position=time.time_ns())
        session.add(row)
        record_change(session, self.product, self._event("c", None, row.entity(), row.position))

    def _change(self, session: Session, row: HousingUnitRow, status: str) -> None:
        before = row.entity()
        row.status = status
        if status == "available":
            row.available_from = dt.date.today() + dt.timedelta(days=self.rng.randint(0, 14))
        row.updated_at = _now()
        row.position = max(time.time_ns(), row.position + 1)
        record_change(session, self.product, self._event("u", before, row.entity(), row.position))

    def _let_in_region(self, session: Session, region: str) -> None:
        row = session.scalars(select(HousingUnitRow).where(HousingUnitRow.region_code == region,
                                                           HousingUnitRow.status.in_(("available", "reserved")))
                              .order_by(HousingUnitRow.unit_id).limit(1)).first()
        if row is None:  # nothing left to take: the region's shortage is already complete
            self._random(session, region)
            return
        self._change(session, row, "let")

    def _random(self, session: Session, exclude_region: object = None) -> None:
        query = select(HousingUnitRow).order_by(HousingUnitRow.unit_id)
        if exclude_region:
            query = query.where(HousingUnitRow.region_code != exclude_region)
        rows = session.scalars(query).all()
        if len(rows) < 10 or self.rng.random() < 0.2:
            areas = [a for a in self.areas if local_authorities()[a].region_code != exclude_region]
            self._add(session, self.rng.choice(areas), "available" if self.rng.random() < 0.8 else "void")
            return
        row = self.rng.choice(rows)
        states, weights = zip(*TRANSITIONS[row.status])
        self._change(session, row, self.rng.choices(states, weights)[0])

    def _event(self, op: str, before: dict | None, after: dict | None, position: int) -> ChangeEvent:
        return ChangeEvent(op=op, before=before, after=after, source_system=SOURCE_SYSTEM, position=position)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run_housing_simulator(settings: Settings | None = None, *, seed: int = 1, rate: float = DEFAULT_RATE,
                          count: int | None = None, duration: float | None = None, scenario: str | None = None,
                          stop_event: threading.Event | None = None, progress: Progress | None = None,
                          database: Path | str | None = None, topic: str | None = None,
                          time_scale: float = 1.0) -> SimulationReport:
    """Run the housing service: changes at ``rate`` per second until ``count``/``duration``
    /the scenario's end/``stop_event``; returns once every change has been published."""
    settings = settings or get_settings()
    database = Path(database or settings.dataplatform_home / "housing.db")
    database.parent.mkdir(parents=True, exist_ok=True)
    engine = housing_engine(database)
    service = HousingService(engine, get_product(PRODUCT), seed)
    if scenario:
        plan = scenario_plan(scenario, seed=seed, rate=rate, time_scale=time_scale)
        steps, total = iter(plan.housing), len(plan.housing)
    else:
        steps, total = random_steps(rate), None
    relay = OutboxRelay(engine, name=SOURCE_SYSTEM, publisher_factory=lambda product: Publisher(
        product, source_system=SOURCE_SYSTEM, settings=settings, topic=topic))
    relay_stop = threading.Event()
    relay_thread = threading.Thread(target=relay.run_forever, args=(relay_stop, 0.2), name="outbox-relay", daemon=True)
    started = time.monotonic()
    unsent = 0
    relay.publisher_for(PRODUCT)  # open now: a registry refusing the schema stops us before any change
    relay_thread.start()
    try:
        changes = run_steps(steps, service.apply, count=count, duration=duration, stop_event=stop_event,
                            progress=progress, total=total)
    finally:
        relay_stop.set()
        relay_thread.join()
        try:
            relay.drain()
            unsent = relay.pending()
        finally:
            relay.close()
            engine.dispose()
    return SimulationReport("housing", changes, changes - unsent, time.monotonic() - started, unsent)
