"""Serving the web service: in the foreground (``serve``) or in a background thread
(``RunningServer``, for tests and ``dataplatform run``, which also run Kafka and processors).

``RunningServer`` binds port 0 and reads back the port the OS chose, so there is no window
in which another process can take a "free" port between choosing and binding it.
"""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI
from uvicorn.config import LOGGING_CONFIG

from dataplatform.config import Settings


def serve(host: str = "127.0.0.1", port: int = 8081, settings: Settings | None = None) -> None:
    """Run the web service in the foreground until Ctrl-C."""
    from dataplatform.config import get_settings
    from dataplatform.web.app import create_app, start_warning_follower

    settings = settings or get_settings()
    app = create_app(settings)
    if settings.kafka_bootstrap_servers:
        registry = settings.schema_registry_url or f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"

        @app.on_event("startup")
        def _follow_warnings() -> None:
            start_warning_follower(app, bootstrap=settings.kafka_bootstrap_servers, registry_url=registry)

    uvicorn.run(app, host=host, port=port, log_level="info")


class RunningServer:
    """The web service on a background thread; ``start()`` returns its base URL.

    Use as ``with RunningServer(settings=s) as server: server.url``. ``stop()`` sets
    uvicorn's ``should_exit`` and joins the thread.
    """

    def __init__(self, app: FastAPI | None = None, *, settings: Settings | None = None,
                 host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 20.0,
                 log_level: str = "warning", log_config: dict | None = LOGGING_CONFIG) -> None:
        if app is None:
            from dataplatform.web.app import create_app

            app = create_app(settings)
        self.app = app
        self.host = host
        self.startup_timeout = startup_timeout
        # log_config=None: uvicorn logs through the root logger (e.g. to the run's log file).
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                                     lifespan="on", log_config=log_config))
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        try:
            self._server.run()
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc

    def start(self) -> str:
        self._thread = threading.Thread(target=self._run, name="dataplatform-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"web service failed to start on {self.host}: {self._error!r}")
            if time.monotonic() >= deadline:
                self.stop()
                raise TimeoutError(f"web service did not start within {self.startup_timeout}s")
            time.sleep(0.02)
        sockets = [sock for server in self._server.servers for sock in server.sockets]
        self.port = sockets[0].getsockname()[1]
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout)

    def __enter__(self) -> "RunningServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
