"""A component's own ``/metrics`` port: a sink, outbox relay or bridge started alone serves
its Prometheus metrics with ``--metrics-port`` (under ``dataplatform run`` they are the web
service's).

The port answers as the web service's ``/metrics`` does, being a read like any other: open
while no ``API_READ_TOKEN`` is set; once it is, only with the read or the write token, as
``Authorization: Bearer <token>`` or HTTP Basic with the token as password (one Prometheus
scrape config serves every job); 401 without credentials, 403 with wrong ones, in the web
service's error shape (:func:`dataplatform.web.auth.credentials_refusal`). Requests are not
logged, so no header reaches a log.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, make_wsgi_app
from prometheus_client.registry import Collector

from dataplatform.config import Settings
from dataplatform.web.auth import AccessRules, credentials_refusal, token_in


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True   # a slow scrape never holds the component's exit


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Log nothing: the component's own log says what it does, not who scraped it."""


def metrics_app(settings: Settings, registry: Collector = REGISTRY) -> Callable:
    """The WSGI app: the registry's metrics for a request the access rules let read."""
    rules, metrics = AccessRules(settings), make_wsgi_app(registry)

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        refused = credentials_refusal(rules, token_in(environ.get("HTTP_AUTHORIZATION", "")), writing=False)
        if refused is None:
            return metrics(environ, start_response)
        start_response(f"{refused.status_code} {HTTPStatus(refused.status_code).phrase}",
                       [(k.decode("latin-1"), v.decode("latin-1")) for k, v in refused.raw_headers])
        return [refused.body]

    return app


def serve_metrics(port: int, settings: Settings, host: str = "0.0.0.0") -> WSGIServer:
    """Serve this process's metrics on ``host:port`` from a daemon thread (``shutdown()``
    stops it); OSError when the port cannot be bound. Returns the server."""
    server = make_server(host, port, metrics_app(settings), server_class=_Server, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name=f"metrics-{port}", daemon=True).start()
    return server


def access_note(settings: Settings) -> str:
    """What a scrape of the port needs, for the component's start-up line (never the token)."""
    return "API_READ_TOKEN or API_WRITE_TOKEN needed" if AccessRules(settings).read_tokens else "open: no API_READ_TOKEN"
