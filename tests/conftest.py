"""localchat's own test set-up: the shipped pytest plugin plus per-test isolation."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import peewee
import playhouse.db_url
import pytest

import localchat
from localchat.config import ENV_VARS
from localchat.models import ALL_MODELS

#: Every row of every localchat table, table by table, in id order.
Rows = list[list[tuple[Any, ...]]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "src(name, content): the file name and bytes the `src` fixture writes "
        "(default: upload.txt holding b'hello').",
    )


def pytest_report_header(config: pytest.Config) -> str:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
        fts5 = "yes"
    except sqlite3.OperationalError:
        fts5 = "no"
    finally:
        conn.close()
    return (
        f"localchat {localchat.__version__}, peewee {peewee.__version__}, "
        f"SQLite {sqlite3.sqlite_version}, FTS5 {fts5}"
    )


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No developer shell variable leaks in; the platform data dir is per test."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield
    localchat.close_all()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The PostgreSQL test database's URL, held by this test alone while it runs.

    The database is named by ``LOCALCHAT_TEST_POSTGRES_URL`` (``.ci/run`` starts
    a server and sets it); without it the test is skipped with that reason.
    """
    url = os.environ.get("LOCALCHAT_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set LOCALCHAT_TEST_POSTGRES_URL=postgresql://... to run on PostgreSQL")
    # One database for every xdist worker: one test at a time holds it (a session-level
    # advisory lock on a connection of its own), or two tests' rows collide.
    lock = playhouse.db_url.connect(url)
    lock.connect()
    try:
        lock.execute_sql("SELECT pg_advisory_lock(%s)", (_PG_TEST_LOCK,))
        yield url
    finally:
        lock.close()  # ends the lock's session, and the lock with it


@pytest.fixture
def pg_session(pg_url: str) -> Iterator[localchat.Session]:
    """A session on a freshly migrated PostgreSQL database (see ``pg_url``)."""
    localchat.reset_db(url=pg_url)
    with localchat.open_store(url=pg_url).session() as s:
        yield s


_PG_TEST_LOCK = 0x6C6F63616C  # any fixed number, the same in every worker


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's own (not yet created) database file goes."""
    return tmp_path / "store" / "chat.db"


@pytest.fixture
def s(localchat_session: localchat.Session) -> localchat.Session:
    """``localchat_session`` under the short name the repository tests use."""
    return localchat_session


@pytest.fixture
def src(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A file to store, ``tmp_path/inbox/<name>``, outside any store.

    A module or test names it and its bytes with ``@pytest.mark.src("Notes.TXT", b"...")``.
    """
    marker = request.node.get_closest_marker("src")
    name, content = marker.args if marker is not None else ("upload.txt", b"hello")
    path = tmp_path / "inbox" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return path


def _every_row(s: localchat.Session) -> Rows:
    return [
        [tuple(row) for row in s.db.execute_sql(f'SELECT * FROM "{table}" ORDER BY 1')]
        for table in (model._meta.table_name for model in ALL_MODELS)
    ]


@pytest.fixture
def snapshot() -> Callable[[localchat.Session], Rows]:
    """``snapshot(s)``: every row of every table as ``s`` sees it, in id order.

    Take one before a call that must change nothing, and compare after it.
    """
    return _every_row


def _disconnecting_call(
    app: Any, method: str, path: str, *, cookie: str | None = None, chunks: int = 1
) -> list[dict[str, Any]]:
    """Run one request through the ASGI ``app`` whose client goes away mid-response.

    The client reads the response start and ``chunks`` body chunks, then its
    connection fails on the next one (what a closed browser tab does to a
    server that speaks ASGI 2.4). Returns the messages the app sent.
    """
    import asyncio

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)  # the body is empty: nothing more arrives
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and len(sent) > chunks + 1:
            raise OSError("connection reset by peer")

    headers = [(b"host", b"testserver")]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "state": {},
    }

    async def call() -> None:
        try:
            await app(scope, receive, send)
        except Exception:  # the server sees the disconnect (ClientDisconnect)
            pass

    asyncio.run(call())
    return sent


@pytest.fixture
def disconnecting_call() -> Callable[..., list[dict[str, Any]]]:
    """``disconnecting_call(app, "POST", "/path", cookie=..., chunks=1)``: a request
    whose client goes away after ``chunks`` chunks of the response; the sent messages."""
    return _disconnecting_call
