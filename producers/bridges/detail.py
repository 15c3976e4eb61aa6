"""Fetching an event's ``detailUrl``: timeouts, retries with backoff, an OAuth2 client-credentials token.

HMPPS APIs want a bearer token from HMPPS Auth, obtained with the client-credentials grant
(``BRIDGE_TOKEN_URL``, ``BRIDGE_CLIENT_ID``, ``BRIDGE_CLIENT_SECRET``). The token is kept
until shortly before it expires and fetched again after a 401; it is never logged (nor is
the secret: both live only in request headers and bodies, which nothing here logs).

A failed fetch (no connection, a timeout, a 5xx, a 429, a 404 that may be a replica behind)
is retried with exponential backoff for up to ``retry_seconds``: an API that is down for a
while delays the bridge but loses nothing, because the message stays on the queue (its
visibility extended) until it is published. Only then is it :class:`DetailUnavailable`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, stop_when_event_set, wait_exponential

log = logging.getLogger(__name__)
TOKEN_EARLY_S = 30.0   # renew this long before the token expires


class DetailUnavailable(RuntimeError):
    """The detail could not be fetched after the retries."""


class Stopping(RuntimeError):
    """The bridge is stopping while a fetch was being retried: the message stays on the queue."""


class _Retry(Exception):
    """A failure worth trying again."""


class DetailClient:
    """GETs detail URLs as JSON, with a client-credentials token when a token URL is set."""

    def __init__(self, *, token_url: str | None = None, client_id: str | None = None,
                 client_secret: str | None = None, timeout: float = 10.0, retry_seconds: float = 60.0,
                 max_backoff: float = 5.0) -> None:
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))
        self._token_url, self._client_id, self._client_secret = token_url, client_id, client_secret
        self.retry_seconds, self.max_backoff = retry_seconds, max_backoff
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()
        self.retries = 0

    def fetch(self, url: str, stop: threading.Event | None = None) -> dict[str, Any]:
        """The JSON object at ``url``; DetailUnavailable once the retries are spent, Stopping
        when ``stop`` is set meanwhile (a stopping bridge does not dead-letter what it could not fetch)."""
        stop = stop or threading.Event()
        retrying = Retrying(stop=stop_after_delay(self.retry_seconds) | stop_when_event_set(stop), reraise=True,
                            wait=wait_exponential(multiplier=0.2, max=self.max_backoff), sleep=stop.wait,
                            retry=retry_if_exception_type(_Retry), before_sleep=self._before_sleep(url))
        try:
            for attempt in retrying:
                with attempt:
                    return self._get(url)
        except _Retry as exc:
            if stop.is_set():
                raise Stopping(f"stopped while GET {url} was failing: {exc}") from None
            raise DetailUnavailable(f"GET {url} failed for {self.retry_seconds:.0f}s: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _get(self, url: str) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        token = self._bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise _Retry(f"{type(exc).__name__}: {exc}") from None
        if response.status_code == 401 and token:
            self._token = None   # expired or revoked early: a new one next attempt
        if response.status_code >= 400:
            raise _Retry(f"HTTP {response.status_code}")
        try:
            detail = response.json()
        except ValueError:
            raise DetailUnavailable(f"GET {url} returned a body that is not JSON") from None
        if not isinstance(detail, dict):
            raise DetailUnavailable(f"GET {url} returned a JSON {type(detail).__name__}, not an object")
        return detail

    def _bearer(self) -> str | None:
        if not self._token_url:
            return None
        with self._lock:
            if self._token is None or time.monotonic() >= self._token[1]:
                try:
                    response = self._http.post(self._token_url, data={"grant_type": "client_credentials"},
                                               auth=(self._client_id or "", self._client_secret or ""))
                except httpx.HTTPError as exc:
                    raise _Retry(f"token endpoint: {type(exc).__name__}") from None
                if response.status_code != 200:
                    raise _Retry(f"token endpoint answered HTTP {response.status_code}")
                body = response.json()
                expires = float(body.get("expires_in", 300))
                self._token = (str(body["access_token"]), time.monotonic() + max(expires - TOKEN_EARLY_S, 1.0))
            return self._token[0]

    def _before_sleep(self, url: str):  # noqa: ANN202
        def note(state) -> None:  # noqa: ANN001
            self.retries += 1
            log.warning("detail %s: %s; retrying in %.1fs", url, state.outcome.exception(), state.next_action.sleep)
        return note

    def close(self) -> None:
        self._http.close()
