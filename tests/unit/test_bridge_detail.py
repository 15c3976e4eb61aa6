"""The bridge's detail client against a real local HTTP server playing HMPPS Auth and a
service API: the client-credentials token is fetched once, sent as a bearer, renewed after
a 401, never logged; failures are retried, then reported; a stop interrupts the retries."""

from __future__ import annotations

import base64
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dataplatform.producers.bridges.detail import DetailClient, DetailUnavailable, Stopping

SECRET = "s3cret-client-secret"


class Service:
    def __init__(self) -> None:
        self.tokens_issued = 0
        self.revoked: set[str] = set()
        self.failures_left = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                expected = "Basic " + base64.b64encode(f"bridge:{SECRET}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self._answer(401, {"error": "invalid_client"})
                service.tokens_issued += 1
                self._answer(200, {"access_token": f"token-{service.tokens_issued}", "expires_in": 1200})

            def do_GET(self) -> None:  # noqa: N802
                if service.failures_left:
                    service.failures_left -= 1
                    return self._answer(503, {})
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                if not token.startswith("token-") or token in service.revoked:
                    return self._answer(401, {})
                self._answer(200, {"caseId": self.path.rsplit("/", 1)[-1]})

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args) -> None:  # noqa: ANN002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def service():
    s = Service()
    yield s
    s.server.shutdown()
    s.server.server_close()


def client(service: Service, **kw) -> DetailClient:  # noqa: ANN003
    return DetailClient(token_url=f"{service.url}/auth/oauth/token", client_id="bridge", client_secret=SECRET,
                        max_backoff=0.05, **kw)


def test_a_token_is_fetched_once_renewed_after_a_401_and_never_logged(service, caplog):
    caplog.set_level(logging.DEBUG)
    detail = client(service)
    assert detail.fetch(f"{service.url}/cases/RC-1") == {"caseId": "RC-1"}
    assert detail.fetch(f"{service.url}/cases/RC-2") == {"caseId": "RC-2"}
    assert service.tokens_issued == 1
    service.revoked.add("token-1")
    assert detail.fetch(f"{service.url}/cases/RC-3") == {"caseId": "RC-3"}
    assert service.tokens_issued == 2
    assert SECRET not in caplog.text and "token-1" not in caplog.text and "token-2" not in caplog.text


def test_failures_are_retried_then_reported(service):
    service.failures_left = 3
    detail = client(service, retry_seconds=5)
    assert detail.fetch(f"{service.url}/cases/RC-1") == {"caseId": "RC-1"} and detail.retries == 3
    service.failures_left = 10_000
    with pytest.raises(DetailUnavailable, match="HTTP 503"):
        client(service, retry_seconds=0.3).fetch(f"{service.url}/cases/RC-1")


def test_a_stop_interrupts_the_retries(service):
    service.failures_left = 10_000
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(Stopping):
        client(service, retry_seconds=60).fetch(f"{service.url}/cases/RC-1", stop)
