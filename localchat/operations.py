"""The shape of every data-access function: ``@operation`` and its siblings.

    @operation
    def get_user(s, user_id):           return get_row(User, user_id)

``operation`` makes each call (1) run on *its* session's store, whatever other
session is open in the thread, (2) atomic: a failed call is rolled back to a
savepoint, leaving the session as it was, and (3) raise localchat errors,
never peewee's ``IntegrityError``. It also (4) presents the session parameter
as ``session`` (the functions call it ``s`` inside): ``get_user(session=s, user_id=1)``
works and ``inspect.signature(get_user)`` starts with ``session``; anything else
first raises ``NoSession``. :func:`read_operation` and
:func:`own_atomicity_operation` skip the savepoint where it buys nothing.

Used by the repository, search and export alike.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sqlite3
import sys
from collections.abc import Callable
from threading import get_ident
from typing import Any, Concatenate, ParamSpec, TypeVar

import peewee

from .database import Session
from .errors import Conflict, NoSession, translate
from .models import router

__all__ = [
    "operation",
    "read_operation",
    "own_atomicity_operation",
    "in_savepoint",
    "session_signature",
    "session_db",
    "no_session",
    "off_loop",
]

P = ParamSpec("P")
R = TypeVar("R")


def operation(
    fn: Callable[Concatenate[Session, P], R],
) -> Callable[Concatenate[Session, P], R]:
    """Run ``fn(s, ...)`` bound to ``s``'s store, in a savepoint, with clean errors."""
    return _wrap(fn, savepoint=True)


def read_operation(
    fn: Callable[Concatenate[Session, P], R],
) -> Callable[Concatenate[Session, P], R]:
    """:func:`operation` for a call that only reads: no savepoint on SQLite.

    A savepoint costs two statements (about 10-15 us); a call that writes
    nothing has nothing to roll back. Only for functions that never write.
    On PostgreSQL the savepoint stays: a failed read would otherwise abort the
    session's transaction.
    """
    return _wrap(fn, savepoint=False)


def own_atomicity_operation(
    fn: Callable[Concatenate[Session, P], R],
) -> Callable[Concatenate[Session, P], R]:
    """:func:`operation` for a call that makes itself atomic: no savepoint around it.

    The call either writes with ONE statement (SQLite runs a statement, its
    triggers included, atomically: a failing one leaves nothing behind and the
    transaction goes on), or wraps its writes in :func:`in_savepoint`.
    """
    return _wrap(fn, savepoint=False)


def in_savepoint(db: peewee.Database, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """``fn(*args, **kwargs)`` atomically: in a savepoint, or a transaction if none is open."""
    if db.transaction_depth() == 0:
        with db.atomic():
            return fn(*args, **kwargs)
    return _in_savepoint(db, fn, *args, **kwargs)


def _wrap(
    fn: Callable[Concatenate[Session, P], R], *, savepoint: bool
) -> Callable[Concatenate[Session, P], R]:
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(s: Any = _MISSING, /, *args: Any, **kwargs: Any) -> R:
        if s is _MISSING:  # f(session=s, ...): the name every signature shows
            s = kwargs.pop("session", _MISSING)
            if s is _MISSING:
                raise TypeError(f"{name}() missing 1 required argument: 'session'")
        elif kwargs and "session" in kwargs:
            raise TypeError(f"{name}() got multiple values for argument 'session'")
        db = getattr(s, "db", None)
        if db is None:
            raise no_session(name, s)
        if s.owner != get_ident():
            s.check_usable()
        pushed = router.obj is not db
        if pushed:
            router.push(db)
        try:
            # Only SQLite can skip it: on PostgreSQL any failed statement, a read
            # included, aborts the whole transaction unless a savepoint catches it.
            if not savepoint and isinstance(db, peewee.SqliteDatabase):
                return fn(s, *args, **kwargs)
            if db.transaction_depth() == 0:  # no transaction open: peewee starts one
                with db.atomic():
                    return fn(s, *args, **kwargs)
            return _in_savepoint(db, fn, s, *args, **kwargs)
        except peewee.IntegrityError as exc:
            raise Conflict(_integrity_message(exc)) from exc
        except (peewee.PeeweeException, sqlite3.Error, OSError) as exc:
            error = translate(exc, s.store.config.describe(), readonly=s.readonly)
            if error is None:
                raise
            raise error from exc
        finally:
            if pushed:
                router.pop()

    wrapper.__signature__ = session_signature(fn)  # type: ignore[attr-defined]
    return wrapper


_MISSING: Any = object()


def session_signature(fn: Callable[..., Any]) -> inspect.Signature:
    """``fn``'s signature with its first parameter (the session) named ``session``.

    The functions name it ``s`` inside; callers see and may pass ``session=``.
    """
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    params[0] = params[0].replace(name="session", kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sig.replace(parameters=params)


def no_session(name: str, value: Any) -> NoSession:
    """The error for a call whose first argument is not a localchat session."""
    return NoSession(
        f"{name}() takes a localchat session first (from get_session() or "
        f"local_session()), got {type(value).__name__}."
    )


def session_db(name: str, session: Any) -> peewee.Database:
    """The database of ``session``; :class:`NoSession` if it is not a localchat session."""
    db = getattr(session, "db", None)
    if db is None:
        raise no_session(name, session)
    return db


def off_loop(fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """``fn(*args, **kwargs)``; inside an asyncio session, in a worker thread.

    For the slow, database-free steps of a data-access function (the password
    KDF, copying a file): :mod:`localchat.aio` runs data-access functions in
    the event loop's thread (their queries wait in the driver's), so these
    steps hand the loop back while they work. Everywhere else: a plain call.
    """
    bridge = sys.modules.get("playhouse.pwasyncio")
    if bridge is not None and isinstance(router.obj, bridge.AsyncDatabaseMixin):
        greenlet = sys.modules["greenlet"]
        if greenlet.getcurrent().parent is not None:  # inside the bridge: await_ works
            return bridge.await_(asyncio.to_thread(fn, *args, **kwargs))
    return fn(*args, **kwargs)


# One fixed savepoint name: SQLite and PostgreSQL release / roll back the most
# recent savepoint of a name, so nesting works, and the statements' text never
# changes, so the driver reuses them prepared (peewee's atomic() names each
# savepoint with a fresh uuid: a new statement to parse every call).
_SAVEPOINT = 'SAVEPOINT "localchat_call"'
_RELEASE = 'RELEASE SAVEPOINT "localchat_call"'
_ROLLBACK = 'ROLLBACK TO SAVEPOINT "localchat_call"'


def _in_savepoint(db: peewee.Database, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """``fn(*args, **kwargs)`` in a savepoint: on any error, its changes are undone."""
    db.execute_sql(_SAVEPOINT)
    try:
        result = fn(*args, **kwargs)
        db.execute_sql(_RELEASE)
    except BaseException:
        db.execute_sql(_ROLLBACK)
        db.execute_sql(_RELEASE)
        raise
    return result


def _integrity_message(exc: Exception) -> str:
    text = str(exc)
    if "UNIQUE" in text or "unique" in text or "duplicate key" in text:
        return f"already exists: {text}"
    if "FOREIGN KEY" in text or "foreign key" in text:
        return f"refers to a record that does not exist: {text}"
    return f"constraint failed: {text}"
