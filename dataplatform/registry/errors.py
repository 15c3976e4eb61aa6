"""Registry errors carrying Confluent's error codes.

The store raises these so the HTTP layer can render them exactly as Confluent's registry
does (``{"error_code": 40401, "message": ...}``); confluent-kafka's client surfaces that
code as ``SchemaRegistryError.error_code``, so callers can branch on it.
"""

from __future__ import annotations

MAX_MESSAGE = 500
"""Longest message served: a parser's message can quote the whole rejected schema."""


class RegistryError(Exception):
    """A failure with a Confluent ``error_code`` and the HTTP status it is served with."""

    error_code: int = 50001
    http_status: int = 500

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + "… (cut)"
        super().__init__(message)
        self.message = message
        self.details = list(details or [])


class SubjectNotFound(RegistryError):
    error_code = 40401
    http_status = 404

    def __init__(self, subject: str) -> None:
        super().__init__(f"Subject '{subject}' not found.")


class VersionNotFound(RegistryError):
    error_code = 40402
    http_status = 404

    def __init__(self, version: int | str) -> None:
        super().__init__(f"Version {version} not found.")


class SchemaNotFound(RegistryError):
    error_code = 40403
    http_status = 404

    def __init__(self, schema_id: int | None = None) -> None:
        super().__init__("Schema not found" if schema_id is None else f"Schema {schema_id} not found")


class InvalidSchema(RegistryError):
    error_code = 42201
    http_status = 422

    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid schema: {reason}")


class InvalidSubject(RegistryError):
    error_code = 42208
    http_status = 422

    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid subject: {reason}")


class InvalidVersion(RegistryError):
    error_code = 42202
    http_status = 422

    def __init__(self, version: object) -> None:
        super().__init__(
            f"The specified version '{version}' is not a valid version id. "
            'Allowed values are between [1, 2^31-1] and the string "latest"'
        )


class InvalidCompatibilityLevel(RegistryError):
    error_code = 42203
    http_status = 422

    def __init__(self, level: object) -> None:
        super().__init__(
            f"Invalid compatibility level '{level}'. Valid values are none, backward, forward, full, "
            "backward_transitive, forward_transitive, and full_transitive"
        )


class IncompatibleSchema(RegistryError):
    """Served as HTTP 409 with ``error_code`` 409, as Confluent's registry does."""

    error_code = 409
    http_status = 409

    def __init__(self, subject: str, level: str, details: list[str]) -> None:
        super().__init__(
            f"Schema being registered is incompatible with an earlier schema for subject "
            f"\"{subject}\" (compatibility {level}), details: {details}",
            details=details,
        )
