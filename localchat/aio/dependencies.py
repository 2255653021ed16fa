"""Async dependencies for FastAPI / Starlette, without depending on either.

    from fastapi import Depends, FastAPI
    from localchat.aio import AsyncSession, get_async_db, log_generation

    app = FastAPI()

    @app.post("/log")
    async def log(session: AsyncSession = Depends(get_async_db)):
        await log_generation(session, user_id="u1", document_type="note",
                             input_data={}, generated_text={})

``get_async_db`` yields a write session on the configured store (the one
:func:`localchat.web.configure` chose, else the environment or the platform
data directory, as ``get_session()``): commit
when the request succeeds, rollback on an exception, the connection released
always, also when the client disconnects and the task is cancelled. It takes
no parameters, so a framework never exposes one as a request parameter; for
another store, :func:`async_db_dependency` makes a dependency bound to it.
``get_async_db_session`` is the same as an async context manager.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable

from ..config import DEFAULT_APP_NAME
from ..database import Store
from .store import AsyncSession, AsyncStore, aio_session

__all__ = ["get_async_db", "get_async_db_session", "get_session", "async_db_dependency"]


async def get_async_db() -> AsyncIterator[AsyncSession]:
    """A dependency: one write session per request on the configured store."""
    from ..web import current_store  # the web layer's choice of store (configure())

    async with aio_session(current_store()) as session:
        yield session


#: The source document's name for :func:`get_async_db` (``Depends(get_session)``).
get_session = get_async_db


def get_async_db_session(
    db_path: str | os.PathLike[str] | Store | AsyncStore | None = None,
    *,
    url: str | None = None,
    app_name: str = DEFAULT_APP_NAME,
    readonly: bool = False,
) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
    """``async with get_async_db_session() as s:``; :func:`~localchat.aio.aio_session`.

    With no store named it uses the configured one, like :func:`get_async_db`.
    """
    if db_path is None and url is None and app_name == DEFAULT_APP_NAME:
        from ..web import current_store

        db_path = current_store()
    return aio_session(db_path, url=url, app_name=app_name, readonly=readonly)


def async_db_dependency(
    db_path: str | os.PathLike[str] | Store | AsyncStore | None = None,
    *,
    url: str | None = None,
    app_name: str = DEFAULT_APP_NAME,
    readonly: bool = False,
) -> Callable[[], AsyncIterator[AsyncSession]]:
    """A parameterless dependency like :func:`get_async_db`, bound to this store."""

    async def dependency() -> AsyncIterator[AsyncSession]:
        async with aio_session(db_path, url=url, app_name=app_name, readonly=readonly) as s:
            yield s

    return dependency
