"""Web apps: FastAPI / Starlette dependencies and the source documents' repository classes.

    from fastapi import Depends, FastAPI
    from localchat import Session
    from localchat.web import ConversationRepository, configure, get_db

    configure("chat.db")        # else: the store get_session() resolves (env vars, platform dir)
    app = FastAPI()

    @app.get("/conversations")
    def conversations(db: Session = Depends(get_db)):
        return ConversationRepository.get_by_user_email(db, "ada@example.org")

``get_db`` is a generator dependency: it yields a :class:`RequestSession`,
commits when the request succeeds, rolls back when it raises (an
``HTTPException`` too), and always returns the connection. ``get_read_db`` is
its read-only twin (a snapshot that never waits for a writer), and
``get_db_session()`` the same transaction as a context manager for code
outside a request. Nothing here imports FastAPI: these are plain generators.
Their async twins, ``get_async_db`` and ``get_async_db_session`` (from
:mod:`localchat.aio`, the ``async`` extra), use the same configured store.

Why a request session is not a plain :class:`~localchat.Session`: FastAPI
enters a sync generator dependency in one worker thread, runs the endpoint in
another (or on the event loop) and leaves the dependency in a third. A request
session's transaction therefore belongs to the request, not to a thread: it
has its own connection state, begins on first use (so a request that is
refused before it touches the store costs nothing and holds no lock), and may
be used by one thread at a time, whichever. A write request session that
finds the store busy when it begins lends the web server's thread pool
(anyio's default limiter) one thread while it waits for the lock, so more
writers than threads cannot starve the one holding the lock of the thread it
needs to finish.

Which store: :func:`configure` sets it for the process (``db_path``, ``url``,
``app_name`` or a :class:`~localchat.Store`); until then it is the store
``get_session()`` resolves (``LOCALCHAT_DATABASE_URL``, ``LOCALCHAT_DB_PATH``,
``DATABASE_URL``, ..., else the per-user platform data folder). An app that
must not share process state (or a test) makes its own :class:`Dependencies`
for a given store and uses ``deps.get_db`` instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import peewee

from .aio.dependencies import get_async_db, get_async_db_session
from .config import DEFAULT_APP_NAME
from .database import Session, Store, open_store
from .errors import translate
from .models import Conversation, User, router
from .repository import conversations as _conversations
from .repository import users as _users

__all__ = [
    "RequestSession",
    "Dependencies",
    "configure",
    "current_store",
    "init_db",
    "get_db",
    "get_read_db",
    "get_db_session",
    "get_async_db",
    "get_async_db_session",
    "UserRepository",
    "ConversationRepository",
]


class RequestSession(Session):
    """One transaction for one web request, usable from any one thread at a time.

    It begins on first use (a data-access call, :meth:`savepoint`) and ends
    with :meth:`finish` (the dependencies call it). :meth:`commit` ends the
    transaction early, e.g. before a streamed response; a later call begins a
    new one. ``closed`` is True once it has ended and its connection is back.
    """

    __slots__ = ("_view", "_txn", "_ended", "_hooks")

    def __init__(self, store: Store, *, readonly: bool = False) -> None:
        self._txn: Any = None
        self._ended = False
        self._hooks: list[Callable[[], Any]] = []
        source = store.read_db if readonly else store.db
        self._view = _request_view(source)
        super().__init__(store, self._view, readonly)
        self.owner = -1  # no thread owns it: every call goes through check_usable()

    @property
    def db(self) -> peewee.Database:
        """The database, its transaction begun: any use of it begins the request's work."""
        self.check_usable()
        return self._view

    @db.setter
    def db(self, value: peewee.Database) -> None:
        self._view = value

    @property
    def closed(self) -> bool:
        """Ended, with no transaction open and no connection held."""
        return self._ended and self._view.is_closed()

    def check_usable(self) -> None:
        """Begin the transaction if it is not open yet; SessionClosed once ended."""
        if self._ended:
            self.owner = 0
            super().check_usable()  # raises "has ended"
        if self._txn is None:
            self._begin()

    def savepoint(self) -> Any:
        return self.db.atomic()

    def after_rollback(self, fn: Callable[[], Any]) -> None:
        self._hooks.append(fn)

    def commit(self) -> None:
        """Commit what was written so far (nothing happens if nothing began)."""
        self._end(None)

    def rollback(self) -> None:
        """Undo what was written so far (nothing happens if nothing began)."""
        self._end(_RolledBack())

    def finish(self, exc: BaseException | None = None) -> None:
        """Commit (``exc`` None) or roll back, then end the session for good."""
        try:
            self._end(exc)
        finally:
            self._ended = True
            self.owner = 0

    def _begin(self) -> None:
        store, db = self.store, self._view
        where = store.config.describe()
        try:
            if self.readonly:
                store.ensure_readable()  # never writes: refuses a store that needs migrating
            else:
                store.ensure_migrated()
            db.connect()
            if store.is_sqlite and not self.readonly:
                txn = _begin_writing(db)
            else:
                txn = db.atomic()
                txn.__enter__()
            if self.readonly and not store.is_sqlite:
                db.execute_sql("SET TRANSACTION READ ONLY")
        except (peewee.PeeweeException, OSError) as exc:
            _release(db)
            raise translate(exc, where, readonly=self.readonly) or exc from exc
        except BaseException:
            _release(db)
            raise
        self._txn = txn

    def _end(self, exc: BaseException | None) -> None:
        txn, self._txn = self._txn, None
        hooks, self._hooks = self._hooks, []
        if txn is None:
            return
        db = self._view
        router.push(db)  # commit hooks may query the store
        rolled_back = exc is not None
        try:
            if exc is None:
                txn.__exit__(None, None, None)
            else:
                with contextlib.suppress(peewee.PeeweeException):  # the first error wins
                    txn.__exit__(type(exc), exc, exc.__traceback__)
        except peewee.PeeweeException as failed:
            rolled_back = True
            where = self.store.config.describe()
            raise translate(failed, where, readonly=self.readonly) or failed from failed
        finally:
            try:
                if rolled_back:
                    _run(hooks)  # on the still-open connection: they check what the store holds
            finally:
                router.pop()
                _release(db)

    def __repr__(self) -> str:
        kind = "read request session" if self.readonly else "request session"
        return f"<{kind} on {self.store.config.describe()}>"


class _RolledBack(Exception):
    """Stands for "roll back" where no real exception is at hand."""


def _request_view(source: peewee.Database) -> peewee.Database:
    """``source`` with connection state of its own instead of per thread.

    Connections still come from and go back to ``source``'s pool (its own
    checkout and check-in are used), so a request never opens a file.
    """
    view = object.__new__(type(source))
    view.__dict__.update(source.__dict__)
    view._state = peewee._ConnectionState()  # type: ignore[attr-defined]
    view._lock = threading.RLock()  # type: ignore[attr-defined]
    view._connect = source._connect  # type: ignore[attr-defined]
    view._close = source._close  # type: ignore[attr-defined]
    return view


def _begin_writing(db: peewee.Database) -> Any:
    """``BEGIN IMMEDIATE``; if another writer has the lock, wait for it with a thread lent.

    A web server runs ``def`` endpoints in a bounded thread pool (FastAPI's
    has 40) and needs a thread of it again after the endpoint returned, to
    validate its response, before the request's transaction ends. With every
    thread waiting here for the write lock, its holder would wait for a
    thread until the busy timeout. So the first try does not wait; if the
    store is busy, the pool is told it may run one thread more (anyio's
    default limiter, when this thread is one of its workers) for as long as
    this one waits for the lock with the usual busy timeout.
    """
    raw = db.connection()
    (patience,) = raw.execute("PRAGMA busy_timeout").fetchone()
    raw.execute("PRAGMA busy_timeout = 0")
    try:
        txn = db.atomic()
        txn.__enter__()
        return txn
    except peewee.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(patience)}")
    with _thread_lent():
        txn = db.atomic()
        txn.__enter__()
        return txn


@contextlib.contextmanager
def _thread_lent() -> Iterator[None]:
    """One more thread for the anyio worker pool this thread belongs to, while inside."""
    try:
        from anyio import from_thread, to_thread
    except ImportError:  # no web server of that kind here
        yield
        return

    def grow(n: int) -> None:
        to_thread.current_default_thread_limiter().total_tokens += n

    try:
        from_thread.run_sync(grow, 1)
    except RuntimeError:  # not an anyio worker thread: nothing to lend
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(RuntimeError):  # the event loop has ended
            from_thread.run_sync(grow, -1)


def _release(db: peewee.Database) -> None:
    if not db.is_closed():
        db.close()  # back to the pool (which rolls back anything left open)


def _run(hooks: list[Callable[[], Any]]) -> None:
    for fn in hooks:
        try:
            fn()
        except Exception:
            logging.getLogger(__name__).exception("rollback hook %r failed", fn)


# -- which store --------------------------------------------------------------


class Dependencies:
    """``get_db`` / ``get_read_db`` / ``get_db_session`` for one store.

        deps = Dependencies(open_store("chat.db"))
        @app.post("/chats")
        def new_chat(db: Session = Depends(deps.get_db)): ...

    Without a store it follows :func:`configure` (else the default store).
    """

    def __init__(self, store: Store | None = None) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        return self._store if self._store is not None else current_store()

    def get_db(self) -> Iterator[RequestSession]:
        """Yield a write session: commit on success, rollback on an exception, release."""
        yield from _request(self.store, readonly=False)

    def get_read_db(self) -> Iterator[RequestSession]:
        """Yield a read session (a snapshot; writes raise ReadOnlySession)."""
        yield from _request(self.store, readonly=True)

    def get_db_session(
        self, *, readonly: bool = False
    ) -> contextlib.AbstractContextManager[Session]:
        """The store's session as a context manager (commit, rollback, release)."""
        return self.store.session(readonly=readonly)

    async def get_async_db(self) -> AsyncIterator[Any]:
        """The async twin of :meth:`get_db`: an :class:`~localchat.aio.AsyncSession`
        (commit on success, rollback on an exception or a disconnect, released always)."""
        from .aio import aio_session  # the async extra is optional

        async with aio_session(self.store) as session:
            yield session


def _request(store: Store, *, readonly: bool) -> Iterator[RequestSession]:
    session = RequestSession(store, readonly=readonly)
    try:
        yield session
    except BaseException as exc:  # the endpoint failed, or the client went away
        session.finish(exc)
        raise
    else:
        session.finish(None)


_configured: Store | None = None


def configure(
    db_path: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    app_name: str = DEFAULT_APP_NAME,
    store: Store | None = None,
) -> Store:
    """Point :func:`get_db` and its twins at a store for this process; returns it.

    ``configure()`` with no argument goes back to the default resolution.
    """
    global _configured
    if store is None and db_path is None and url is None and app_name == DEFAULT_APP_NAME:
        _configured = None
        return current_store()
    _configured = store if store is not None else open_store(db_path, url=url, app_name=app_name)
    return _configured


def current_store() -> Store:
    """The store the module-level dependencies use (see :func:`configure`)."""
    return _configured if _configured is not None else open_store()


def init_db() -> list[str]:
    """Create or upgrade the configured store; returns the migrations applied."""
    return current_store().upgrade()


_default = Dependencies()


def get_db() -> Iterator[RequestSession]:
    """FastAPI dependency: a write session for the request (``Depends(get_db)``).

    Commits when the request succeeds, rolls back when it raises, always
    releases its connection (a client that disconnects included).
    """
    yield from _default.get_db()


def get_read_db() -> Iterator[RequestSession]:
    """FastAPI dependency: a read session for the request (``Depends(get_read_db)``)."""
    yield from _default.get_read_db()


def get_db_session(*, readonly: bool = False) -> contextlib.AbstractContextManager[Session]:
    """``with get_db_session() as s:`` one transaction on the configured store."""
    return _default.get_db_session(readonly=readonly)


# -- the source documents' repository classes ---------------------------------


class UserRepository:
    """Users keyed by e-mail, as the web-backend document names the calls."""

    @staticmethod
    def get_or_create(db: Session, email: str) -> User:
        """The user with this address, created if there is none."""
        return _users.get_or_create_user_by_email(db, email)[0]

    @staticmethod
    def get_by_email(db: Session, email: str) -> User | None:
        return _users.get_user_by_email(db, email)


class ConversationRepository:
    """Conversations keyed by thread id and owner e-mail (the web-backend document's calls)."""

    @staticmethod
    def create(
        db: Session,
        thread_id: str,
        user_email: str,
        title: str | None = None,
        last_message: str | None = None,
    ) -> Conversation:
        """A new conversation for an existing user; Conflict if the thread id is taken."""
        return _conversations.create_conversation(
            db, user_email=user_email, external_id=thread_id, title=title,
            last_message=last_message,
        )  # fmt: skip

    @staticmethod
    def get_by_thread_id(db: Session, thread_id: str) -> Conversation | None:
        return _conversations.get_conversation_by_thread_id(db, thread_id)

    @staticmethod
    def get_by_user_email(
        db: Session, user_email: str, limit: int = 50, offset: int = 0
    ) -> list[Conversation]:
        """The user's conversations, most recently updated first."""
        return _conversations.list_conversations_for_user(
            db, user_email=user_email, limit=limit, offset=offset
        )

    @staticmethod
    def update(
        db: Session,
        thread_id: str,
        title: str | None = None,
        last_message: str | None = None,
    ) -> Conversation | None:
        """Change the values given; None if there is no such thread."""
        return _conversations.update_conversation(
            db, thread_id, title=title, last_message=last_message
        )

    @staticmethod
    def get_or_create(
        db: Session,
        thread_id: str,
        user_email: str,
        title: str | None = None,
        last_message: str | None = None,
    ) -> Conversation:
        """The thread's conversation, created with these values if new."""
        return _conversations.get_or_create_conversation(
            db, thread_id, title=title, last_message=last_message, user_email=user_email
        )[0]

    @staticmethod
    def delete(db: Session, thread_id: str) -> bool:
        """Delete the conversation with its messages; False if there was none."""
        return _conversations.delete_conversation(db, thread_id)

    @staticmethod
    def count_by_user(db: Session, user_email: str) -> int:
        return _conversations.count_conversations_for_user(db, user_email=user_email)
