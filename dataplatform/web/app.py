"""``create_app``: the factory of the platform's one web service.

One process serves everything HTTP (the schema registry at the root, because Confluent
clients expect ``/subjects`` at the base URL; the catalogue and warnings pages will be
mounted here too), so ``make run`` starts one server and users remember one address.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from dataplatform import __version__
from dataplatform.config import Settings, get_settings
from dataplatform.registry.api import create_registry_router
from dataplatform.registry.store import SchemaRegistryStore


def create_app(settings: Settings | None = None, *, registry_store: SchemaRegistryStore | None = None) -> FastAPI:
    """Build the web service; the registry's tables are created here, before serving.

    ``registry_store`` overrides the store built from ``settings.effective_database_url``
    (the caller then owns it and closes it).
    """
    settings = settings or get_settings()
    owns_store = registry_store is None
    store = registry_store or SchemaRegistryStore(settings.effective_database_url)
    store.create_tables()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owns_store:
                store.close()

    app = FastAPI(title="dataplatform", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.registry_store = store
    app.include_router(create_registry_router(store))
    return app
