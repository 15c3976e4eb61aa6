"""The Confluent Schema Registry REST API, as far as confluent-kafka's clients use it.

Paths, bodies, status codes and error bodies follow Confluent's documentation so that
``SchemaRegistryClient``, ``AvroSerializer`` and ``AvroDeserializer`` work unchanged against
the platform's web service. Every response is ``application/vnd.schemaregistry.v1+json``;
request bodies must say they are JSON (``application/json`` or
``application/vnd.schemaregistry[.v1]+json``, what every Confluent client sends): a body
without that content type is refused with 415, which is also what stops a page on another
origin from posting one with ``fetch(..., {mode: "no-cors"})``. Query
parameters the clients add (``normalize``, ``deleted``, ``format``, ``offset``...) are
tolerated: this registry hard-deletes, so ``deleted`` changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from dataplatform.registry.errors import RegistryError, SchemaNotFound
from dataplatform.registry.database import parse_version
from dataplatform.registry.store import RegisteredVersion, SchemaRegistryStore

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
MAX_SCHEMA_ID = 2**31 - 1
ACCEPTED_BODY_TYPES = ("application/vnd.schemaregistry.v1+json", "application/vnd.schemaregistry+json",
                       "application/json")


class RegistryJSONResponse(JSONResponse):
    media_type = MEDIA_TYPE


def error_response(status: int, error_code: int, message: str) -> RegistryJSONResponse:
    return RegistryJSONResponse({"error_code": error_code, "message": message}, status_code=status)


def validation_message(exc: RequestValidationError) -> str:
    """Where and why a request was malformed, without echoing the values sent."""
    problems = ["{}: {}".format(".".join(str(p) for p in e.get("loc", ())), e.get("msg", "invalid"))
                for e in exc.errors()]
    return f"Unprocessable request: {'; '.join(problems)}"


class RegistryRoute(APIRoute):
    """Renders registry errors (and malformed requests) as Confluent error bodies.

    Doing it in the route class keeps the router self-contained: whichever app mounts it
    gets Confluent-shaped errors without installing app-wide exception handlers.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RegistryError as exc:
                return error_response(exc.http_status, exc.error_code, exc.message)
            except RequestValidationError as exc:
                return error_response(422, 422, validation_message(exc))

        return handle


class _BadRequest(RegistryError):
    error_code = 400
    http_status = 400


class _SubjectLevelNotConfigured(RegistryError):
    error_code = 40408
    http_status = 404


class _UnsupportedMediaType(RegistryError):
    error_code = 415
    http_status = 415


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, for any of the content types Confluent accepts."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ACCEPTED_BODY_TYPES:
        shown = f"'{content_type[:100]}'" if content_type else "no Content-Type"
        raise _UnsupportedMediaType(f"Unsupported content type: {shown}; send Content-Type: {MEDIA_TYPE} "
                                    "(or application/json)")
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise _BadRequest(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _BadRequest("Request body must be a JSON object")
    return body


def _schema_fields(body: dict[str, Any]) -> tuple[str, str | None, list | None]:
    return body.get("schema"), body.get("schemaType"), body.get("references")


def _version_json(registered: RegisteredVersion) -> dict[str, Any]:
    out: dict[str, Any] = {"subject": registered.subject, "version": registered.version,
                           "id": registered.id, "schema": registered.schema}
    if registered.schema_type != "AVRO":
        out["schemaType"] = registered.schema_type
    return out


def _schema_id(raw: str) -> int:
    """A schema id as Confluent's are (a positive 32-bit int); anything else is not found."""
    try:
        schema_id = int(raw)
    except ValueError:
        raise SchemaNotFound() from None
    if not 1 <= schema_id <= MAX_SCHEMA_ID:
        raise SchemaNotFound()
    return schema_id


def _flag(value: str | None) -> bool:
    return str(value).lower() in ("true", "1", "yes")


def create_registry_router(store: SchemaRegistryStore) -> APIRouter:
    """The registry's routes over ``store``; mount at the root of the base URL."""
    router = APIRouter(route_class=RegistryRoute, default_response_class=RegistryJSONResponse,
                       tags=["schema registry"])

    @router.get("/")
    def root() -> dict:
        return {}

    @router.get("/schemas/types")
    def schema_types() -> list[str]:
        return ["AVRO"]

    @router.get("/subjects")
    def subjects(subjectPrefix: str | None = None) -> list[str]:  # noqa: N803 (Confluent's name)
        return store.subjects(subjectPrefix)

    @router.post("/subjects/{subject}/versions")
    def register(subject: str, body: dict = Depends(json_body)) -> dict:
        schema, schema_type, references = _schema_fields(body)
        return {"id": store.register(subject, schema, schema_type, references)}

    @router.post("/subjects/{subject}")
    def lookup(subject: str, body: dict = Depends(json_body)) -> dict:
        schema, schema_type, _ = _schema_fields(body)
        return _version_json(store.lookup(subject, schema, schema_type))

    @router.get("/subjects/{subject}/versions")
    def versions(subject: str) -> list[int]:
        return store.versions(subject)

    @router.get("/subjects/{subject}/versions/{version}")
    def get_version(subject: str, version: str) -> dict:
        return _version_json(store.get_version(subject, version))

    @router.get("/subjects/{subject}/versions/{version}/schema")
    def get_version_schema(subject: str, version: str) -> Response:
        return RegistryJSONResponse(json.loads(store.get_version(subject, version).schema))

    @router.delete("/subjects/{subject}/versions/{version}")
    def delete_version(subject: str, version: str) -> int:
        return store.delete_version(subject, version)

    @router.delete("/subjects/{subject}")
    def delete_subject(subject: str) -> list[int]:
        return store.delete_subject(subject)

    @router.get("/schemas/ids/{schema_id}")
    def schema_by_id(schema_id: str) -> dict:
        stored = store.get_by_id(_schema_id(schema_id))
        out: dict[str, Any] = {"schema": stored.schema}
        if stored.schema_type != "AVRO":
            out["schemaType"] = stored.schema_type
        return out

    @router.get("/schemas/ids/{schema_id}/schema")
    def raw_schema_by_id(schema_id: str) -> Response:
        return RegistryJSONResponse(json.loads(store.get_by_id(_schema_id(schema_id)).schema))

    @router.get("/schemas/ids/{schema_id}/subjects")
    def subjects_by_id(schema_id: str, subject: str | None = None) -> list[str]:
        found = store.subjects_for_id(_schema_id(schema_id))
        return [s for s in found if subject is None or s == subject]

    @router.get("/schemas/ids/{schema_id}/versions")
    def versions_by_id(schema_id: str, subject: str | None = None) -> list[dict]:
        found = store.versions_for_id(_schema_id(schema_id))
        return [{"subject": v.subject, "version": v.version} for v in found
                if subject is None or v.subject == subject]

    @router.get("/config")
    def get_global_config() -> dict:
        return {"compatibilityLevel": store.get_compatibility(None)}

    @router.put("/config")
    def put_global_config(body: dict = Depends(json_body)) -> dict:
        return {"compatibility": store.set_compatibility(_level_from(body), None)}

    @router.delete("/config")
    def delete_global_config() -> dict:
        return {"compatibilityLevel": store.delete_compatibility(None)}

    @router.get("/config/{subject}")
    def get_subject_config(subject: str, defaultToGlobal: str | None = None) -> dict:  # noqa: N803
        # Falls back to the global level unless ?defaultToGlobal=false (then 40408 if unset).
        level = store.get_compatibility(subject, default_to_global=defaultToGlobal is None or _flag(defaultToGlobal))
        if level is None:
            raise _SubjectLevelNotConfigured(f"Subject '{subject}' does not have subject-level compatibility configured")
        return {"compatibilityLevel": level}

    @router.put("/config/{subject}")
    def put_subject_config(subject: str, body: dict = Depends(json_body)) -> dict:
        return {"compatibility": store.set_compatibility(_level_from(body), subject)}

    @router.delete("/config/{subject}")
    def delete_subject_config(subject: str) -> dict:
        return {"compatibilityLevel": store.delete_compatibility(subject)}

    @router.post("/compatibility/subjects/{subject}/versions/{version}")
    def test_one(subject: str, version: str, verbose: str | None = None, body: dict = Depends(json_body)) -> dict:
        schema, schema_type, _ = _schema_fields(body)
        result = store.test_compatibility(subject, schema, parse_version(version), schema_type)
        return _compat_json(result, _flag(verbose))

    @router.post("/compatibility/subjects/{subject}/versions")
    def test_all(subject: str, verbose: str | None = None, body: dict = Depends(json_body)) -> dict:
        schema, schema_type, _ = _schema_fields(body)
        return _compat_json(store.test_compatibility(subject, schema, None, schema_type), _flag(verbose))

    return router


def _level_from(body: dict[str, Any]) -> Any:
    """Confluent's clients send ``compatibility``; some tools send ``compatibilityLevel``."""
    return body.get("compatibility", body.get("compatibilityLevel"))


def _compat_json(result, verbose: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"is_compatible": result.is_compatible}
    if verbose:
        out["messages"] = list(result.messages)
    return out
