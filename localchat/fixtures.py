"""All the pytest fixtures localchat ships; :mod:`localchat.pytest_plugin` registers them.

    def test_reply_is_stored(localchat_session, make_conversation, make_message):
        conv = make_conversation(title="Trip")
        make_message(conversation=conv, role="assistant", content="Hi!")
        assert conv.messages.count() == 1

Stores. Each test gets its own copy of a store migrated once per run (once per
xdist worker), so no test sees another's rows and no test runs a migration:

* ``localchat_db_path``  -- a migrated, empty SQLite file the test may open itself;
* ``localchat_store``    -- the :class:`~localchat.Store` on it (``<database>-files/`` beside it);
* ``localchat_session``  -- a session on that store, rolled back after the test;
* ``localchat_db``       -- that session's peewee database, for raw SQL;
* ``localchat_default_store`` -- that store also becomes the default location, so
  app code calling ``get_session()`` / ``init_db()`` (or a ``localchat`` subprocess)
  uses it;
* ``localchat_capture_on_commit`` -- collects (and with ``execute=True`` runs) the
  ``after_commit`` callbacks registered in ``localchat_session``, which its
  rollback would otherwise drop.

Configuration, overridden by defining a fixture of the same name in a conftest:
``localchat_app_name`` (session scope; default ``"localchat"``) and
``localchat_seed`` (session scope; a function run once on the template, so every
test starts with its rows).

Factories (``make_user``, ``make_conversation``, ``make_message``,
``make_document``, ``make_prompt``, ``make_service``, ``make_model``,
``make_knowledge_chunk``) create rows in ``localchat_session`` with sensible
defaults; every keyword overrides one.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest

from .config import DB_FILENAME, DEFAULT_APP_NAME, resolve
from .database import Session, Store, forget_store, open_store
from .factories import Factories
from .models import (
    Conversation,
    Document,
    KnowledgeChunk,
    LLMModel,
    LLMService,
    Message,
    PromptTemplate,
    User,
)
from .pytest_plugin import node_failed

__all__ = [
    "localchat_app_name",
    "localchat_seed",
    "localchat_db_path",
    "localchat_store",
    "localchat_session",
    "localchat_db",
    "localchat_default_store",
    "localchat_capture_on_commit",
    "localchat_factories",
    "make_user",
    "make_conversation",
    "make_message",
    "make_document",
    "make_prompt",
    "make_service",
    "make_model",
    "make_knowledge_chunk",
]


# -- configuration (override in a conftest) ----------------------------------


@pytest.fixture(scope="session")
def localchat_app_name() -> str:
    """The app name the test stores are opened with (``store.config.app_name``).

    Override it with your app's, if your code reads it back.
    """
    return DEFAULT_APP_NAME


@pytest.fixture(scope="session")
def localchat_seed() -> Callable[[Session], object] | None:
    """``None``, or a function ``seed(session)`` run once on the migrated template.

    Rows it creates are in every test's store at no per-test cost::

        @pytest.fixture(scope="session")
        def localchat_seed():
            def seed(s):
                create_service(s, "local", provider="ollama")
            return seed
    """
    return None


# -- plumbing ----------------------------------------------------------------


class _Discard(Exception):
    """Raised into a session at teardown so it rolls back."""


@pytest.fixture(scope="session")
def _localchat_template(
    tmp_path_factory: pytest.TempPathFactory,
    localchat_seed: Callable[[Session], object] | None,
) -> Path:
    """A store migrated (and seeded) once per run, or per xdist worker; tests copy it."""
    path = tmp_path_factory.mktemp("localchat-template") / DB_FILENAME
    store = Store(resolve(path))
    try:
        store.upgrade()
        if localchat_seed is not None:
            with store.session() as s:
                localchat_seed(s)
    finally:
        store.close()
    return path


@pytest.fixture(scope="session")
def _localchat_stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder holding every test's store (cheaper than one ``tmp_path`` each)."""
    return tmp_path_factory.mktemp("localchat-stores")


_numbers = itertools.count()


# -- stores ------------------------------------------------------------------


@pytest.fixture
def localchat_db_path(
    request: pytest.FixtureRequest, _localchat_stores: Path, _localchat_template: Path
) -> Iterator[Path]:
    """A migrated, empty SQLite file (0600) on disk that the test can open itself.

    It sits alone in a private folder (``<database>-files/`` of ``localchat_store`` goes
    beside it) under pytest's base temporary directory. The folder is deleted
    after a test that passed, and kept after one that failed, for a look inside.
    """
    name = re.sub(r"\W", "_", request.node.name)[:40]
    folder = _localchat_stores / f"{next(_numbers)}-{name}"
    folder.mkdir(mode=0o700)
    path = folder / DB_FILENAME
    shutil.copyfile(_localchat_template, path)
    os.chmod(path, 0o600)
    yield path
    if not node_failed(request.node):
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def localchat_store(localchat_db_path: Path, localchat_app_name: str) -> Iterator[Store]:
    """The fresh migrated :class:`~localchat.Store` on ``localchat_db_path``.

    It is the store ``open_store(localchat_db_path)`` returns during the test,
    so app code opening the same file shares its connection and transaction.
    No migration check runs on it: it is a copy of the migrated template.
    """
    store = open_store(localchat_db_path, app_name=localchat_app_name)
    store.assume_migrated()  # a copy of the migrated template: localchat's, in WAL mode
    try:
        yield store
    finally:
        store.close()
        forget_store(store)


@pytest.fixture
def localchat_session(localchat_store: Store) -> Iterator[Session]:
    """A session (one transaction) on a fresh migrated store, rolled back after the test.

    Functions of :mod:`localchat.repository` take it first; plain model queries
    work too. Nothing is committed, so callbacks registered with ``after_commit``
    (removing a deleted document's file, ...) never run by themselves: run them
    with ``localchat_capture_on_commit(execute=True)``.
    """
    try:
        with localchat_store.session() as s:
            yield s
            raise _Discard
    except _Discard:
        pass


@pytest.fixture
def localchat_db(localchat_session: Session) -> peewee.Database:
    """The peewee database of ``localchat_session``, for raw SQL inside its transaction."""
    return localchat_session.db


@pytest.fixture
def localchat_default_store(
    localchat_store: Store, localchat_db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Store:
    """``localchat_store``, made the default location for the test's duration.

    Sets ``LOCALCHAT_DB_PATH``, which comes first in localchat's configuration,
    so that ``get_session()``, ``init_db()`` and ``open_store()`` without a path,
    with any ``app_name``, and ``localchat`` subprocesses all use the test's store.
    """
    monkeypatch.setenv("LOCALCHAT_DB_PATH", str(localchat_db_path))
    return localchat_store


#: What ``localchat_capture_on_commit`` returns: ``capture(*, execute=False)``.
CaptureOnCommit = Callable[..., contextlib.AbstractContextManager[list[Callable[[], Any]]]]


@pytest.fixture
def localchat_capture_on_commit(localchat_session: Session) -> CaptureOnCommit:
    """``with localchat_capture_on_commit(execute=False) as callbacks:`` collects commit callbacks.

    The ``after_commit`` callbacks registered in ``localchat_session`` inside the
    block are taken out of its transaction (which is rolled back, so they would
    never run) and put in ``callbacks``, in order. With ``execute=True`` they run
    when the block ends without an exception, as a commit would run them (and so
    do the callbacks they register). Like pytest-django's
    ``django_capture_on_commit_callbacks``::

        def test_deleting_removes_the_file(localchat_session, localchat_capture_on_commit,
                                           make_document):
            doc = make_document(content=b"x")
            with localchat_capture_on_commit(execute=True) as callbacks:
                delete_document(localchat_session, doc.id, delete_file=True)
            assert len(callbacks) == 1 and not Path(doc.path).exists()
    """

    @contextlib.contextmanager
    def capture(*, execute: bool = False) -> Iterator[list[Callable[[], Any]]]:
        # peewee keeps the outermost transaction's callbacks in a per-thread list.
        pending: list[Callable[[], Any]] = localchat_session.db._state.commit_callbacks  # type: ignore[attr-defined]
        start = len(pending)
        callbacks: list[Callable[[], Any]] = []
        try:
            yield callbacks
        except BaseException:
            callbacks.extend(pending[start:])
            del pending[start:]
            raise
        while len(pending) > start:
            new = pending[start:]
            del pending[start:]
            callbacks.extend(new)
            if not execute:
                break
            for fn in new:
                fn()

    return capture


# -- factories ---------------------------------------------------------------


@pytest.fixture
def localchat_factories(localchat_session: Session) -> Factories:
    """A :class:`~localchat.factories.Factories` bound to ``localchat_session``."""
    return Factories(localchat_session)


@pytest.fixture
def make_user(localchat_factories: Factories) -> Callable[..., User]:
    """``make_user(**fields)``: a user with a unique e-mail, username and name.

    ``password="..."`` stores its hash; any ``create_user`` keyword overrides.
    """
    return localchat_factories.user


@pytest.fixture
def make_conversation(localchat_factories: Factories) -> Callable[..., Conversation]:
    """``make_conversation(user=..., **fields)``: owned by a new user unless given.

    ``user=None`` makes it anonymous; any ``create_conversation`` keyword overrides.
    """
    return localchat_factories.conversation


@pytest.fixture
def make_message(localchat_factories: Factories) -> Callable[..., Message]:
    """``make_message(conversation=..., role="user", content=..., **fields)``.

    In a new conversation unless given, under its latest message unless
    ``parent_id=`` says otherwise.
    """
    return localchat_factories.message


@pytest.fixture
def make_document(localchat_factories: Factories) -> Callable[..., Document]:
    """``make_document(content=b"...", filename="a.pdf", user=..., conversation=...)``.

    The bytes go to the store's own ``<database>-files/``; ``content=None`` records metadata only.
    """
    return localchat_factories.document


@pytest.fixture
def make_prompt(localchat_factories: Factories) -> Callable[..., PromptTemplate]:
    """``make_prompt(key=..., name=..., content=...)``: a prompt template."""
    return localchat_factories.prompt


@pytest.fixture
def make_service(localchat_factories: Factories) -> Callable[..., LLMService]:
    """``make_service(name=..., provider="ollama", base_url=...)``: an LLM endpoint."""
    return localchat_factories.service


@pytest.fixture
def make_model(localchat_factories: Factories) -> Callable[..., LLMModel]:
    """``make_model(service=..., name=..., **fields)``: a model of a new service unless given."""
    return localchat_factories.model


@pytest.fixture
def make_knowledge_chunk(localchat_factories: Factories) -> Callable[..., KnowledgeChunk]:
    """``make_knowledge_chunk(source="docs", content=..., **fields)``: upserted by external id."""
    return localchat_factories.knowledge_chunk
