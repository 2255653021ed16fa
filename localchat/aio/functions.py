"""Every data-access function as an awaitable: one wrapper, generated from ``__all__``.

    from localchat.aio import aio_session, functions

    async with aio_session() as s:
        conv = await functions.create_conversation(s, title="Hi")   # also localchat.aio.*

:func:`bridge` turns a function that takes a session first into
``async def f(session, ...)`` that runs the very same function through the
session's greenlet bridge (:meth:`~localchat.aio.AsyncSession.run`): no second
copy of any data-access code exists. :func:`store_bridge` does it for the few
functions that take a ``Store`` and open their own sync sessions
(``check_store``, ``vacuum_store``): they run in a worker thread.

:data:`BRIDGED` maps each generated name to the sync function it runs; it
covers the ``__all__`` of every module in :data:`SOURCES`. A function there
that takes neither a session nor a store (``hash_password``,
``render_prompt``, ``fts_query``...) touches no database: call it directly.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from ..database import Store

__all__ = ["bridge", "store_bridge", "SOURCES", "BRIDGED", "kind_of"]

P = ParamSpec("P")
R = TypeVar("R")

#: The modules whose public functions are generated here (their ``__all__``).
SOURCES = (
    "localchat.repository",
    "localchat.search",
    "localchat.maintenance",
    "localchat.export",
    "localchat.portable",
)

# Returning a lazy iterator would query outside the bridge: these are listed instead.
_ITERATORS = {"iter_export_records", "iter_message_records"}


def bridge(fn: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Any, P], Awaitable[R]]:
    """``fn(session, ...)`` as a coroutine function on an :class:`AsyncSession`.

    An iterator-returning function (``iter_export_records``) is drained in the
    bridge and its items returned as a list.
    """
    drain = fn.__name__ in _ITERATORS

    def run_drained(s: Any, *args: Any, **kwargs: Any) -> Any:
        return list(fn(s, *args, **kwargs))  # type: ignore[call-overload]

    target: Callable[..., Any] = run_drained if drain else fn

    @functools.wraps(fn)
    async def call(session: Any = _MISSING, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if session is _MISSING:
            session = kwargs.pop("session", _MISSING)
        run = getattr(session, "run", None)
        if run is None:
            from ..operations import no_session

            raise no_session(fn.__name__, session)
        return await run(target, *args, **kwargs)

    return call


def store_bridge(fn: Callable[Concatenate[Store, P], R]) -> Callable[..., Awaitable[R]]:
    """``fn(store, ...)`` awaitable in a worker thread; takes an ``AsyncStore``, a
    ``Store`` or a location."""

    @functools.wraps(fn)
    async def call(store: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        from ..database import open_store
        from .store import AsyncStore

        if isinstance(store, AsyncStore):
            store = store.store
        elif not isinstance(store, Store):
            store = open_store(store)
        return await asyncio.to_thread(fn, store, *args, **kwargs)

    return call


_MISSING: Any = object()


def kind_of(fn: Any) -> str:
    """``"session"``, ``"store"`` or ``""``: what ``fn`` takes first (if a function)."""
    if not callable(fn) or inspect.isclass(fn):
        return ""
    try:
        first = next(iter(inspect.signature(fn).parameters), "")
    except (TypeError, ValueError):
        return ""
    return {"session": "session", "s": "session", "store": "store"}.get(first, "")


def _generate() -> dict[str, tuple[Callable[..., Any], Callable[..., Awaitable[Any]]]]:
    made: dict[str, tuple[Callable[..., Any], Callable[..., Awaitable[Any]]]] = {}
    for source in SOURCES:
        module = importlib.import_module(source)
        for name in module.__all__:
            fn = getattr(module, name)
            kind = kind_of(fn)
            if kind == "session":
                made[name] = (fn, bridge(fn))
            elif kind == "store" and not name.startswith("stream_"):  # stream_reply: aio's own
                made[name] = (fn, store_bridge(fn))
    return made


_made = _generate()
#: generated name -> the sync function it awaits.
BRIDGED: dict[str, Callable[..., Any]] = {name: pair[0] for name, pair in _made.items()}
globals().update({name: pair[1] for name, pair in _made.items()})
__all__ += sorted(_made)
del _made


def __getattr__(name: str) -> Any:  # for type checkers: the generated names are dynamic
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
