"""No input gets a 500: every route in /openapi.json, swept with bad input (item 5 of issue 29).

The web service runs under uvicorn on PostgreSQL (which refuses NUL bytes and lone
surrogates that SQLite would take), with a warning stored and a schema registered so the
routes that take an id reach their database code. Two sweeps:

* a table: every route with each known cause of a 500 (dates at the calendar's ends, page
  numbers past 64 bits, a non-string compatibility level, JSON nested 100,000 deep, Avro
  schemas nested past Python's recursion limit, lone surrogates, invalid UTF-8, values of
  5,000 characters) in every path and query parameter and as the body;
* Hypothesis: routes, parameters and bodies drawn at random from those, arbitrary text and
  arbitrary JSON.

Every answer must be below 500; a JSON error must have the ``{"error_code", "message"}`` shape
and a message of at most ``MAX_MESSAGE`` characters (values are cut to 500 in messages).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dataplatform.config import Settings
from dataplatform.web.app import create_app
from dataplatform.web.server import RunningServer
from tests.support.warnings import warning

MAX_MESSAGE = 1_000   # a message with one value cut to 500 characters, and the words around it
LONG = "x" * 5_000
DEEP_JSON = "[" * 100_000 + "]" * 100_000
WARNING = warning(area_code="E06000001", area_name="Hartlepool")
CLIENT = httpx.Client(timeout=30)   # one keep-alive connection for every example

# A raw path segment or query value, as sent on the wire (already percent-encoded).
BAD_VALUES = ["9999-12-31", "0001-01-01", "10" + "0" * 29, "-" + "9" * 40, "-1", "0", quote(LONG), "%00", "%ED%A0%80",
              "%FF%FE", quote("\x00"), quote("'; DROP TABLE x; --"), "..%2F..%2Fetc%2Fpasswd", "latest", "NaN", "1e309",
              quote(WARNING["warning_id"], safe="")]


def deep_schema(depth: int) -> str:
    return '{"type": "array", "items": ' * depth + '"int"' + "}" * depth


BAD_BODIES: list[tuple[str, bytes]] = [
    ("application/json", b'{"compatibility": 7}'),
    ("application/json", b'{"compatibility": {"a": [1]}}'),
    ("application/json", b'{"compatibilityLevel": null}'),
    ("application/json", DEEP_JSON.encode()),
    ("application/json", json.dumps({"schema": deep_schema(5_000)}).encode()),
    ("application/json", json.dumps({"schema": deep_schema(5_000), "schemaType": "JSON"}).encode()),
    ("application/json", json.dumps({"schema": "\ud800"}).encode()),
    ("application/json", b'{"schema": "\\ud800", "by": "\\ud800", "note": "\\udfff"}'),
    ("application/json", b'{"by": "\\u0000", "note": "a\\u0000b"}'),
    ("application/json", json.dumps({"by": LONG, "note": LONG, "schema": LONG, "compatibility": LONG}).encode()),
    ("application/json", json.dumps({"schema": json.dumps({"type": "record", "name": LONG, "fields": []})}).encode()),
    ("application/json", b'{"schema": 7, "schemaType": 7, "references": 7}'),
    ("application/json", b"\xff\xfe\x00"),
    ("application/json", b"7"),
    ("application/json", b"[]"),
    ("application/json", b"1e999999"),
    ("application/vnd.schemaregistry.v1+json", b'{"schema": "{\\"type\\": \\"int\\"}", "schemaType": "PROTOBUF"}'),
    ("application/x-www-form-urlencoded", b"by=%FF%FE&note=%ED%A0%80"),
    ("application/x-www-form-urlencoded", b"by=\xff\xfe&note=\xed\xa0\x80"),
    ("application/x-www-form-urlencoded", ("by=" + quote(LONG)).encode()),
    ("application/x-www-form-urlencoded", b"by=a%00b"),
    ("text/plain", b"\x00" * 10),
]


@pytest.fixture(scope="module")
def service(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[tuple[str, str, list[str]]]]]:
    """The web service on its own PostgreSQL schema, a warning stored; its URL and routes
    (method, path template, query parameter names)."""
    schema = f"sweep_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    home: Path = tmp_path_factory.mktemp("sweep")
    app = create_app(Settings(dataplatform_home=home, database_url=url.render_as_string(hide_password=False)))
    app.state.warning_store.add({"before": None, "after": WARNING, "source": {"event_id": uuid.uuid4().hex}}, 0, 0)
    try:
        with RunningServer(app) as server:
            spec = httpx.get(f"{server.url}/openapi.json").json()
            routes = [(method.upper(), path, [p["name"] for p in op.get("parameters", []) if p["in"] == "query"])
                      for path, ops in spec["paths"].items() for method, op in ops.items()]
            assert len(routes) > 40
            registered = httpx.post(f"{server.url}/subjects/sweep-value/versions", json={"schema": '"int"'})
            assert registered.status_code == 200
            yield server.url, routes
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: value, path)


def check(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        assert set(body) == {"error_code", "message"}, f"{what}: not the error shape: {body!r:.300}"
        assert len(body["message"]) <= MAX_MESSAGE, f"{what}: a message of {len(body['message'])} characters"


def send(client: httpx.Client, base: str, method: str, target: str, content_type: str | None = None,
         body: bytes | None = None) -> httpx.Response:
    headers = {"content-type": content_type} if content_type else {}
    # The target goes on the wire as given (httpx would re-encode it otherwise).
    request = client.build_request(method, base, headers=headers, content=body)
    request.url = request.url.copy_with(raw_path=target.encode("latin-1"))
    return client.send(request)


def test_every_route_answers_every_known_bad_input_without_a_5xx(service):
    base, routes = service
    sent = 0
    with httpx.Client(timeout=30) as client:
        for method, path, query in routes:
            if path == "/warnings/stream":
                continue   # an endless event stream: covered by the live page's tests
            for value in BAD_VALUES:
                target = fill(path, value) + ("?" + "&".join(f"{q}={value}" for q in query) if query else "")
                check(send(client, base, method, target), f"{method} {target[:200]}")
                sent += 1
            if method in ("POST", "PUT"):
                target = fill(path, quote(WARNING["warning_id"], safe="") if "warning" in path else "sweep-value")
                for content_type, body in BAD_BODIES:
                    check(send(client, base, method, target, content_type, body), f"{method} {target} {body[:80]!r}")
                    sent += 1
    assert sent > 900


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_input_on_random_routes_never_gets_a_5xx(service, data):
    base, routes = service
    method, path, query = data.draw(st.sampled_from([r for r in routes if r[1] != "/warnings/stream"]))
    value = st.one_of(st.sampled_from(BAD_VALUES), st.text(max_size=40).map(lambda t: quote(t, safe="")))
    target = fill(path, data.draw(value))
    params = {q: data.draw(value) for q in query if data.draw(st.booleans())}
    if params:
        target += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    content_type, body = None, None
    if method in ("POST", "PUT"):
        content_type, body = data.draw(st.one_of(
            st.sampled_from(BAD_BODIES),
            st.tuples(st.just("application/json"),
                      st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                                   lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                                       st.sampled_from(["schema", "schemaType", "by", "note", "compatibility",
                                                        "compatibilityLevel", "references"]) | st.text(max_size=8),
                                       inner, max_size=4), max_leaves=12).map(lambda v: json.dumps(v).encode()))))
    check(send(CLIENT, base, method, target, content_type, body), f"{method} {target[:200]} {body!r:.80}")
