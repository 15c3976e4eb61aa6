"""The registry's tables (SQLAlchemy 2.0 typed models), portable across SQLite and PostgreSQL.

Schemas are stored once, keyed by a unique fingerprint of their canonical text: that unique
constraint is what makes concurrent registration of one schema from many clients converge on
one id (the losers of the race hit ``IntegrityError`` and re-read). Subject versions point at
schemas, so one schema registered under two subjects keeps one id, as Confluent's does.
Tables are prefixed ``registry_`` because they share a database with the catalogue and sinks.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

GLOBAL_CONFIG = ""
"""``RegistryConfig.subject`` of the global compatibility level (subjects are never empty)."""


class Base(DeclarativeBase):
    """Declarative base of the registry; ``Base.metadata.create_all(engine)`` makes its tables."""


class SchemaRecord(Base):
    """One distinct schema; ``id`` is the schema id clients put in every message's header."""

    __tablename__ = "registry_schemas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schema_type: Mapped[str] = mapped_column(String(16), default="AVRO")
    schema_text: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)


class SubjectVersion(Base):
    """Version ``version`` of ``subject`` is schema ``schema_id``.

    ``unique(subject, version)`` serialises concurrent new versions of a subject;
    ``unique(subject, schema_id)`` means a schema appears at most once per subject, so
    re-registering it returns the existing version instead of adding one.
    """

    __tablename__ = "registry_subject_versions"
    __table_args__ = (
        UniqueConstraint("subject", "version", name="uq_registry_subject_version"),
        UniqueConstraint("subject", "schema_id", name="uq_registry_subject_schema"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[int] = mapped_column(Integer)
    schema_id: Mapped[int] = mapped_column(ForeignKey("registry_schemas.id"))


class RegistryConfig(Base):
    """Compatibility level of one subject, or the global one (``subject == GLOBAL_CONFIG``)."""

    __tablename__ = "registry_config"

    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    compatibility: Mapped[str] = mapped_column(String(32))


metadata = Base.metadata
