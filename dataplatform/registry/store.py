"""The registry's logic, independent of HTTP, so it can be tested and reused directly.

``SchemaRegistryStore`` is what the REST routes (:mod:`~dataplatform.registry.api`) and the
catalogue call: this module holds its schemas, subjects and versions (registering, reading,
looking up, deleting); the compatibility levels it inherits are in
:mod:`~dataplatform.registry.levels`, and the engine, transactions and race handling they
both rely on in :mod:`~dataplatform.registry.database`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from dataplatform.registry.canonical import canonicalise, parse_avro
from dataplatform.registry.compatibility import CompatibilityLevel, check
from dataplatform.registry.database import (
    REGISTER_ATTEMPTS,
    check_subject,
    level_of,
    parse_version,
    versions_with_schemas,
)
from dataplatform.registry.errors import (
    IncompatibleSchema,
    InvalidSchema,
    SchemaNotFound,
    SubjectNotFound,
    VersionNotFound,
)
from dataplatform.registry.levels import CompatibilityLevels
from dataplatform.registry.models import RegistryConfig, SchemaRecord, SubjectVersion


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


class SchemaRegistryStore(CompatibilityLevels):
    """Schemas, subjects, versions and compatibility levels in one SQL database."""

    # -- schemas -----------------------------------------------------------------------

    def register(self, subject: str, schema_str: str, schema_type: str | None = "AVRO",
                 references: list | None = None) -> int:
        """Register ``schema_str`` under ``subject`` and return its schema id.

        The same canonical schema gets the same id under every subject; registering a schema
        a subject already has returns its id without a new version. A new version must be
        compatible with the subject's level, else ``IncompatibleSchema`` (HTTP 409).
        """
        check_subject(subject)
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
        level = level_of(session, subject)
        versions = versions_with_schemas(session, subject)
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
            found = [v for v, _, _ in versions_with_schemas(session, subject)]
        if not found:
            raise SubjectNotFound(subject)
        return found

    def get_version(self, subject: str, version: int | str = "latest") -> RegisteredVersion:
        wanted = parse_version(version)
        with self._read() as session:
            rows = versions_with_schemas(session, subject)
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
            rows = versions_with_schemas(session, subject)
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
            found = [v for v, _, _ in versions_with_schemas(session, subject)]
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
