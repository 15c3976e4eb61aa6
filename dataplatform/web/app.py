"""``create_app``: the factory of the platform's one web service.

One process serves everything HTTP, so ``make run`` starts one server and users remember
one address:
- the schema registry at the root (Confluent clients expect ``/subjects`` at the base URL);
- the catalogue (``/catalogue``, ``/api/products``) and live warnings (``/warnings``,
  ``/api/warnings``, ``/warnings/stream``) pages with a JSON API behind each;
- Prometheus metrics at ``/metrics``;
- OpenAPI documentation at ``/docs`` (Swagger UI), its scripts served from the installed
  ``fastapi-offline`` package, so it works without internet. (No ``/redoc``: ReDoc fetches
  its logo from a CDN.)
- ``/sign-in`` for browsers when reads are protected.
Every request passes, outermost first: security headers, a catch-all that answers
unexpected errors as JSON, the body-size limit, then the access rules (``auth``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from dataplatform import __version__
from dataplatform.catalogue.facts_cache import CatalogueFacts
from dataplatform.config import Settings, get_settings
from dataplatform.heartbeat import HEARTBEAT_TOPIC, HeartbeatBoard
from dataplatform.registry.api import create_registry_router
from dataplatform.registry.store import SchemaRegistryStore
from dataplatform.warnings.acknowledgements import AcknowledgementStore
from dataplatform.warnings.figures import FiguresStore
from dataplatform.warnings.follower import FiguresFollower, WarningFollower
from dataplatform.warnings.kinds import warning_kinds
from dataplatform.warnings.store import WarningStore
from dataplatform.warnings.webhooks import WebhookDispatcher
from dataplatform.web.auth import AccessRules, TokenAuthMiddleware
from dataplatform.web.catalogue_routes import create_catalogue_router, default_products_loader
from dataplatform.web.errors import CatchErrorsMiddleware, install_error_handlers
from dataplatform.web.middleware import BodyLimitMiddleware, SecurityHeadersMiddleware
from dataplatform.web.scrape_metrics import KafkaSampler, PlatformCollector, exposition
from dataplatform.web.sign_in import create_sign_in_router
from dataplatform.web.templating import STATIC_DIR
from dataplatform.web.warnings_api import create_warnings_api
from dataplatform.web.warnings_routes import create_warnings_router
from dataplatform.web.warnings_view import WarningsView

LIVE_PARTS = ("warning_follower", "figures_follower", "heartbeats", "kafka_sampler", "webhooks")


def create_app(settings: Settings | None = None, *, registry_store: SchemaRegistryStore | None = None,
               products_loader: Callable[[], dict | tuple[dict, list]] | None = None) -> FastAPI:
    """Build the web service; the registry's and warnings' tables are created here.

    ``registry_store`` overrides the store built from ``settings.effective_database_url``
    (the caller then owns it and closes it). ``products_loader`` returns the products, or
    the products and the broken ones (``dataplatform.products.product.survey_products``, the default).
    Live warnings need Kafka: call :func:`start_warning_follower` once the registry answers.
    """
    settings = settings or get_settings()
    owns_store = registry_store is None
    store = registry_store or SchemaRegistryStore(settings.effective_database_url)
    store.create_tables()
    warning_store = WarningStore(engine=store.engine)
    view = WarningsView(store=warning_store, figures=FiguresStore(store.engine),
                        acks=AcknowledgementStore(store.engine, warning_store), zone=settings.display_timezone,
                        products=lambda: _products_only(app.state.products_loader()), heartbeats=lambda: app.state.heartbeats)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            stop_warning_follower(app)
            app.state.catalogue_facts.stop()
            if owns_store:
                store.close()

    app = FastAPIOffline(title="dataplatform", version=__version__, lifespan=lifespan, static_url="/static/api-docs",
                         redoc_url=None,
                         description="Schema registry (Confluent-compatible), data catalogue and live warnings.")
    app.state.settings = settings
    app.state.registry_store = store
    app.state.warning_store = warning_store
    app.state.warnings_view = view
    for part in LIVE_PARTS:
        setattr(app.state, part, None)
    app.state.products_loader = products_loader or default_products_loader
    app.state.catalogue_facts = CatalogueFacts(lambda: _products_only(app.state.products_loader()),
                                               lambda: app.state.settings.kafka_bootstrap_servers, settings,
                                               interval=settings.catalogue_refresh_seconds)
    app.state.metrics = CollectorRegistry()
    app.state.metrics.register(PlatformCollector(sampler=lambda: app.state.kafka_sampler,
                                                 current_warnings=view.current_rows,
                                                 heartbeats=lambda: app.state.heartbeats,
                                                 warning_products=lambda: warning_kinds().keys()))
    app.state.access_rules = AccessRules(settings)
    install_error_handlers(app)
    app.add_middleware(TokenAuthMiddleware, rules=app.state.access_rules)  # the last added runs first
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(CatchErrorsMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics (text exposition format)")
    def metrics() -> Response:
        return Response(exposition(app.state.metrics), media_type=CONTENT_TYPE_LATEST)

    app.include_router(create_sign_in_router())
    app.include_router(create_warnings_api(view))
    app.include_router(create_warnings_router(view))
    app.include_router(create_catalogue_router(store, app.state.catalogue_facts))
    app.include_router(create_registry_router(store))
    return app


def start_warning_follower(app: FastAPI, *, bootstrap: str, registry_url: str, topic: str | None = None,
                           warnings_topics: Mapping[str, str] | None = None, figures_topic: str | None = None,
                           heartbeat_topic: str = HEARTBEAT_TOPIC, metrics_interval_s: float = 15.0) -> WarningFollower:
    """Start what keeps the pages live: every derivation's warnings product into the store,
    live stream and webhooks; the area figures behind housing's; the processors' heartbeats;
    Kafka's figures for ``/metrics``. Returns the warnings follower (its ``ready`` says it is
    reading). ``warnings_topics`` replaces a warnings product's topic (``{product: topic}``);
    ``topic`` reads that one topic instead of every warnings product's."""
    settings: Settings = app.state.settings
    webhooks = None
    if settings.webhook_url_list:
        if not settings.webhook_secret:
            raise ValueError("WEBHOOK_URLS is set but WEBHOOK_SECRET is not: webhooks must be signed")
        webhooks = WebhookDispatcher(app.state.warning_store.engine, settings.webhook_url_list,
                                     settings.webhook_secret.get_secret_value())
        webhooks.start()
    follower = WarningFollower(app.state.warning_store, bootstrap=bootstrap, registry_url=registry_url,
                               topic=topic, topics=warnings_topics, webhooks=webhooks, settings=settings).start()
    app.state.warning_follower, app.state.webhooks = follower, webhooks
    app.state.figures_follower = FiguresFollower(app.state.warnings_view.figures, bootstrap=bootstrap,
                                                 registry_url=registry_url, topic=figures_topic,
                                                 settings=settings).start()
    app.state.heartbeats = HeartbeatBoard(bootstrap, settings, heartbeat_topic).start()
    app.state.kafka_sampler = KafkaSampler(bootstrap, settings, metrics_interval_s).start()
    app.state.settings = settings.model_copy(update={"kafka_bootstrap_servers": bootstrap})
    return follower


def stop_warning_follower(app: FastAPI) -> None:
    """Stop everything :func:`start_warning_follower` started; safe to call twice."""
    for part in LIVE_PARTS:
        running = getattr(app.state, part, None)
        if running is not None:
            running.stop()
            setattr(app.state, part, None)


def _products_only(found: dict | tuple[dict, list]) -> dict:
    """The products a loader returned, without the broken ones (see ``create_app``)."""
    return found[0] if isinstance(found, tuple) else found
