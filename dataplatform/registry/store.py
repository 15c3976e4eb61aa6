"""The registry's logic, independent of HTTP, so it can be tested and reused directly.

``SchemaRegistryStore`` wraps one SQLAlchemy engine. Registration is safe under concurrency:
on PostgreSQL each attempt is one transaction and unique constraints arbitrate races (the
loser gets ``IntegrityError`` and retries, then finds the winner's row); on SQLite, which
allows only one writer, writes in this process also take a lock so they queue instead of
failing with "database is locked".
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, create_engine, delete, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from dataplatform.registry.canonical import canonicalise, parse_avro
from dataplatform.registry.compatibility import DEFAULT_LEVEL, CompatibilityLevel, check
from dataplatform.registry.errors import (
    IncompatibleSchema,
    InvalidSchema,
    InvalidSubject,
    InvalidVersion,
    SchemaNotFound,
    SubjectNotFound,
    VersionNotFound,
)
from dataplatform.registry.models import GLOBAL_CONFIG, RegistryConfig, SchemaRecord, SubjectVersion, metadata

MAX_VERSION = 2**31 - 1
MAX_SUBJECT_LENGTH = 255  # the column's width: the same limit on SQLite and PostgreSQL
REGISTER_ATTEMPTS = 20


@dataclass(frozen=True)
class StoredSchema:
    id: int
    schema: str
    schema_type: str = "AVRO"


@dataclass(frozen=True)
class RegisteredVersion:
    subject: str
    version: int
    id: int
    schema: str
    schema_type: str = "AVRO"


@dataclass(frozen=True)
class CompatibilityResult:
    is_compatible: bool
    messages: list[str] = field(default_factory=list)


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


def make_engine(database_url: str) -> Engine:
    """An engine suited to the registry's access pattern on SQLite or PostgreSQL."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if url.database in (None, "", ":memory:"):
        return create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
    Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})


class SchemaRegistryStore:
    """Schemas, subjects, versions and compatibility levels in one SQL database."""

    def __init__(self, database_url: str | None = None, *, engine: Engine | None = None) -> None:
        if engine is None:
            if database_url is None:
                from dataplatform.config import get_settings

                database_url = get_settings().effective_database_url
            engine = make_engine(database_url)
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._sqlite = engine.dialect.name == "sqlite"
        self._write_lock = threading.Lock()

    def create_tables(self) -> None:
        """Create the registry's tables if missing (idempotent; called at web-service startup)."""
        metadata.create_all(self.engine)

    def drop_tables(self) -> None:
        metadata.drop_all(self.engine)

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

    # -- schemas -----------------------------------------------------------------------

    def register(self, subject: str, schema_str: str, schema_type: str | None = "AVRO",
                 references: list | None = None) -> int:
        """Register ``schema_str`` under ``subject`` and return its schema id.

        The same canonical schema gets the same id under every subject; registering a schema
        a subject already has returns its id without a new version. A new version must be
        compatible with the subject's level, else ``IncompatibleSchema`` (HTTP 409).
        """
        self._check_subject(subject)
        if references:
            raise InvalidSchema("schema references are not supported by this registry")
        canonical = canonicalise(schema_str, schema_type)
        kind = (schema_type or "AVRO").upper()
        last_error: Exception | None = None
        for _ in range(REGISTER_ATTEMPTS):
            try:
                with self._write() as session:
                    return self._register_once(session, subject, canonical, kind)
            except IntegrityError as exc:  # another writer won a race; re-read and retry
                last_error = exc
            except OperationalError as exc:  # e.g. SQLite busy from another process
                if not self._sqlite:
                    raise
                last_error = exc
        raise RuntimeError(f"could not register schema under {subject!r}: {last_error}")

    def _register_once(self, session: Session, subject: str, canonical, kind: str) -> int:
        schema_id = session.scalar(select(SchemaRecord.id).where(SchemaRecord.fingerprint == canonical.fingerprint))
        if schema_id is not None:
            existing = session.scalar(select(SubjectVersion.version).where(
                SubjectVersion.subject == subject, SubjectVersion.schema_id == schema_id))
            if existing is not None:
                return schema_id
        level = self._level(session, subject)
        versions = self._versions_with_schemas(session, subject)
        if versions and level is not CompatibilityLevel.NONE:
            against = versions if level.transitive else versions[-1:]
            problems = check(canonical.parsed, [(v, parse_avro(text)) for v, _, text in against], level)
            if problems:
                raise IncompatibleSchema(subject, level.value, problems)
        if schema_id is None:
            record = SchemaRecord(schema_type=kind, schema_text=canonical.text, fingerprint=canonical.fingerprint)
            session.add(record)
            session.flush()
            schema_id = record.id
        next_version = (versions[-1][0] if versions else 0) + 1
        session.add(SubjectVersion(subject=subject, version=next_version, schema_id=schema_id))
        session.flush()
        return schema_id

    def get_by_id(self, schema_id: int) -> StoredSchema:
        with self._read() as session:
            record = session.get(SchemaRecord, schema_id)
            if record is None:
                raise SchemaNotFound(schema_id)
            return StoredSchema(record.id, record.schema_text, record.schema_type)

    def subjects_for_id(self, schema_id: int) -> list[str]:
        return sorted({v.subject for v in self.versions_for_id(schema_id)})

    def versions_for_id(self, schema_id: int) -> list[RegisteredVersion]:
        """Every (subject, version) that is schema ``schema_id``; 40403 if the id is unknown."""
        schema = self.get_by_id(schema_id)
        with self._read() as session:
            rows = session.execute(select(SubjectVersion.subject, SubjectVersion.version)
                                   .where(SubjectVersion.schema_id == schema_id)
                                   .order_by(SubjectVersion.subject, SubjectVersion.version)).all()
        return [RegisteredVersion(s, v, schema.id, schema.schema, schema.schema_type) for s, v in rows]

    # -- subjects ----------------------------------------------------------------------

    def subjects(self, prefix: str | None = None) -> list[str]:
        with self._read() as session:
            query = select(SubjectVersion.subject).distinct().order_by(SubjectVersion.subject)
            if prefix:
                query = query.where(SubjectVersion.subject.startswith(prefix, autoescape=True))
            return list(session.scalars(query))

    def versions(self, subject: str) -> list[int]:
        """Versions of ``subject`` in ascending order; 40401 if it has none."""
        with self._read() as session:
            found = [v for v, _, _ in self._versions_with_schemas(session, subject)]
        if not found:
            raise SubjectNotFound(subject)
        return found

    def get_version(self, subject: str, version: int | str = "latest") -> RegisteredVersion:
        wanted = parse_version(version)
        with self._read() as session:
            rows = self._versions_with_schemas(session, subject)
        if not rows:
            raise SubjectNotFound(subject)
        if wanted == "latest":
            number, schema_id, text = rows[-1]
        else:
            match = [row for row in rows if row[0] == wanted]
            if not match:
                raise VersionNotFound(wanted)
            number, schema_id, text = match[0]
        return RegisteredVersion(subject, number, schema_id, text)

    def lookup(self, subject: str, schema_str: str, schema_type: str | None = "AVRO") -> RegisteredVersion:
        """The version of ``subject`` that is ``schema_str``: 40401 no subject, 40403 not in it."""
        canonical = canonicalise(schema_str, schema_type)
        with self._read() as session:
            rows = self._versions_with_schemas(session, subject)
            if not rows:
                raise SubjectNotFound(subject)
            schema_id = session.scalar(select(SchemaRecord.id).where(SchemaRecord.fingerprint == canonical.fingerprint))
        for number, row_id, text in rows:
            if row_id == schema_id:
                return RegisteredVersion(subject, number, row_id, text)
        raise SchemaNotFound()

    def delete_subject(self, subject: str) -> list[int]:
        """Hard-delete every version of ``subject`` (and its level); returns the versions.

        Schema ids stay allocated, so re-registering the same schema later gets its old id.
        """
        with self._write() as session:
            found = [v for v, _, _ in self._versions_with_schemas(session, subject)]
            if not found:
                raise SubjectNotFound(subject)
            session.execute(delete(SubjectVersion).where(SubjectVersion.subject == subject))
            session.execute(delete(RegistryConfig).where(RegistryConfig.subject == subject))
        return found

    def delete_version(self, subject: str, version: int | str) -> int:
        registered = self.get_version(subject, version)
        with self._write() as session:
            session.execute(delete(SubjectVersion).where(SubjectVersion.subject == subject,
                                                         SubjectVersion.version == registered.version))
        return registered.version

    # -- compatibility -----------------------------------------------------------------

    def get_compatibility(self, subject: str | None = None, *, default_to_global: bool = True) -> str | None:
        """The level of ``subject`` (falling back to global unless told not to), or global's."""
        with self._read() as session:
            if subject:
                own = session.get(RegistryConfig, subject)
                if own is not None or not default_to_global:
                    return own.compatibility if own else None
            return self._level(session, None).value

    def set_compatibility(self, level: str, subject: str | None = None) -> str:
        """Set the level of ``subject`` (or the global one); 42203 for an unknown level."""
        parsed = CompatibilityLevel.parse(level)
        if subject is not None:
            self._check_subject(subject)
        key = subject or GLOBAL_CONFIG
        for _ in range(REGISTER_ATTEMPTS):
            try:
                with self._write() as session:
                    row = session.get(RegistryConfig, key)
                    if row is None:
                        session.add(RegistryConfig(subject=key, compatibility=parsed.value))
                    else:
                        row.compatibility = parsed.value
                return parsed.value
            except IntegrityError:
                continue
        raise RuntimeError(f"could not set compatibility of {key!r}")

    def delete_compatibility(self, subject: str | None = None) -> str:
        """Remove a subject's own level (or reset global to the default); returns the old one."""
        previous = self.get_compatibility(subject)
        with self._write() as session:
            session.execute(delete(RegistryConfig).where(RegistryConfig.subject == (subject or GLOBAL_CONFIG)))
        return previous or DEFAULT_LEVEL.value

    def test_compatibility(self, subject: str, schema_str: str, version: int | str | None = "latest",
                           schema_type: str | None = "AVRO") -> CompatibilityResult:
        """Would ``schema_str`` be accepted under ``subject``'s level?

        ``version`` names one version to test against (``"latest"`` or a number); ``None``
        tests against what registration would: all versions for transitive levels, else latest.
        """
        canonical = canonicalise(schema_str, schema_type)
        with self._read() as session:
            level = self._level(session, subject)
            rows = self._versions_with_schemas(session, subject)
        if version is None:
            against = rows if level.transitive else rows[-1:]
        else:
            wanted = parse_version(version)
            if not rows:
                raise SubjectNotFound(subject)
            against = rows[-1:] if wanted == "latest" else [r for r in rows if r[0] == wanted]
            if not against:
                raise VersionNotFound(wanted)
        problems = check(canonical.parsed, [(v, parse_avro(text)) for v, _, text in against], level)
        return CompatibilityResult(is_compatible=not problems, messages=problems)

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    def _check_subject(subject: str) -> None:
        """Refuse, before any database sees it, a subject SQLite would store and PostgreSQL refuse."""
        if not subject or not subject.strip():
            raise InvalidSubject("the subject name must not be empty")
        if len(subject) > MAX_SUBJECT_LENGTH:
            raise InvalidSubject(f"the subject name is {len(subject)} characters long; at most {MAX_SUBJECT_LENGTH} are allowed")
        bad = next((c for c in subject if ord(c) < 32 or 127 <= ord(c) < 160), None)
        if bad is not None:
            raise InvalidSubject(f"the subject name contains the control character U+{ord(bad):04X} "
                                 f"at position {subject.index(bad)}; use printable characters only")

    @staticmethod
    def _level(session: Session, subject: str | None) -> CompatibilityLevel:
        for key in ([subject] if subject else []) + [GLOBAL_CONFIG]:
            row = session.get(RegistryConfig, key)
            if row is not None:
                return CompatibilityLevel.parse(row.compatibility)
        return DEFAULT_LEVEL

    @staticmethod
    def _versions_with_schemas(session: Session, subject: str) -> list[tuple[int, int, str]]:
        """``(version, schema_id, schema_text)`` of ``subject``, oldest first."""
        rows = session.execute(
            select(SubjectVersion.version, SchemaRecord.id, SchemaRecord.schema_text)
            .join(SchemaRecord, SchemaRecord.id == SubjectVersion.schema_id)
            .where(SubjectVersion.subject == subject)
            .order_by(SubjectVersion.version)
        ).all()
        return [(v, i, t) for v, i, t in rows]

