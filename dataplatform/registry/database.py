"""The registry's SQL side: the engine, its transactions, and the queries every operation shares.

Registration is safe under concurrency: on PostgreSQL each attempt is one transaction and
unique constraints arbitrate races (the loser gets ``IntegrityError`` and retries, then finds
the winner's row); on SQLite, which allows only one writer, writes in this process also take
a lock so they queue instead of failing with "database is locked". That policy lives here,
once, under both the subject/version operations (:mod:`~dataplatform.registry.store`) and
the compatibility levels (:mod:`~dataplatform.registry.levels`). So do the limits the columns
put on inputs, checked before any database sees them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from dataplatform.config import get_settings
from dataplatform.registry.compatibility import DEFAULT_LEVEL, CompatibilityLevel
from dataplatform.registry.errors import InvalidSubject, InvalidVersion
from dataplatform.registry.models import GLOBAL_CONFIG, RegistryConfig, SchemaRecord, SubjectVersion, metadata

MAX_VERSION = 2**31 - 1
MAX_SUBJECT_LENGTH = 255  # the column's width: the same limit on SQLite and PostgreSQL
REGISTER_ATTEMPTS = 20


def parse_version(version: int | str) -> int | str:
    """``"latest"`` (or -1) stays ``"latest"``; otherwise an int in [1, 2^31-1] or 42202."""
    if isinstance(version, str) and version.strip().lower() == "latest":
        return "latest"
    try:
        number = int(version)
    except (TypeError, ValueError):
        raise InvalidVersion(version) from None
    if number == -1:
        return "latest"
    if not 1 <= number <= MAX_VERSION:
        raise InvalidVersion(version)
    return number


def check_subject(subject: str) -> None:
    """Refuse, before any database sees it, a subject SQLite would store and PostgreSQL refuse."""
    if not subject or not subject.strip():
        raise InvalidSubject("the subject name must not be empty")
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise InvalidSubject(f"the subject name is {len(subject)} characters long; at most {MAX_SUBJECT_LENGTH} are allowed")
    bad = next((c for c in subject if ord(c) < 32 or 127 <= ord(c) < 160), None)
    if bad is not None:
        raise InvalidSubject(f"the subject name contains the control character U+{ord(bad):04X} "
                             f"at position {subject.index(bad)}; use printable characters only")


def make_engine(database_url: str) -> Engine:
    """An engine suited to the registry's access pattern on SQLite or PostgreSQL."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if url.database in (None, "", ":memory:"):
        return create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
    Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})


def level_of(session: Session, subject: str | None) -> CompatibilityLevel:
    """The level that applies to ``subject``: its own, else the global one, else the default."""
    for key in ([subject] if subject else []) + [GLOBAL_CONFIG]:
        row = session.get(RegistryConfig, key)
        if row is not None:
            return CompatibilityLevel.parse(row.compatibility)
    return DEFAULT_LEVEL


def versions_with_schemas(session: Session, subject: str) -> list[tuple[int, int, str]]:
    """``(version, schema_id, schema_text)`` of ``subject``, oldest first."""
    rows = session.execute(
        select(SubjectVersion.version, SchemaRecord.id, SchemaRecord.schema_text)
        .join(SchemaRecord, SchemaRecord.id == SubjectVersion.schema_id)
        .where(SubjectVersion.subject == subject)
        .order_by(SubjectVersion.version)
    ).all()
    return [(v, i, t) for v, i, t in rows]


class RegistryDatabase:
    """One SQLAlchemy engine (the configured database unless told otherwise) and its transactions."""

    def __init__(self, database_url: str | None = None, *, engine: Engine | None = None) -> None:
        if engine is None:
            engine = make_engine(database_url if database_url is not None else get_settings().effective_database_url)
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._sqlite = engine.dialect.name == "sqlite"
        self._write_lock = threading.Lock()

    def create_tables(self) -> None:
        """Create the registry's tables if missing (idempotent; called at web-service startup)."""
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """One write transaction; serialised within the process on SQLite."""
        lock = self._write_lock if self._sqlite else nullcontext()
        with lock, self._sessions.begin() as session:
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session
