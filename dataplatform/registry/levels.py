"""Compatibility levels as the registry stores them: per subject or global, set, reset, tested.

The rules themselves (what makes one Avro schema readable by another) are in
:mod:`~dataplatform.registry.compatibility`; this is the part that needs the database: which
level applies to a subject, changing it, and the ``/compatibility`` dry run of a
registration. :class:`~dataplatform.registry.store.SchemaRegistryStore` builds on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from dataplatform.registry.canonical import canonicalise, parse_avro
from dataplatform.registry.compatibility import DEFAULT_LEVEL, CompatibilityLevel, check
from dataplatform.registry.database import (
    REGISTER_ATTEMPTS,
    RegistryDatabase,
    check_subject,
    level_of,
    parse_version,
    versions_with_schemas,
)
from dataplatform.registry.errors import SubjectNotFound, VersionNotFound
from dataplatform.registry.models import GLOBAL_CONFIG, RegistryConfig


@dataclass(frozen=True)
class CompatibilityResult:
    is_compatible: bool
    messages: list[str] = field(default_factory=list)


class CompatibilityLevels(RegistryDatabase):
    """The compatibility levels of subjects and the global one, in the registry's database."""

    def get_compatibility(self, subject: str | None = None, *, default_to_global: bool = True) -> str | None:
        """The level of ``subject`` (falling back to global unless told not to), or global's."""
        with self._read() as session:
            if subject:
                own = session.get(RegistryConfig, subject)
                if own is not None or not default_to_global:
                    return own.compatibility if own else None
            return level_of(session, None).value

    def set_compatibility(self, level: str, subject: str | None = None) -> str:
        """Set the level of ``subject`` (or the global one); 42203 for an unknown level."""
        parsed = CompatibilityLevel.parse(level)
        if subject is not None:
            check_subject(subject)
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
            level = level_of(session, subject)
            rows = versions_with_schemas(session, subject)
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
