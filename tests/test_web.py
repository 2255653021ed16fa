"""The web dependencies (get_db, get_read_db, get_db_session) and the repository classes.

A request session commits when the request succeeds, rolls back when it raises or the
client goes away, and always gives its connection back, whichever threads FastAPI runs
the dependency and the endpoint in.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from localchat import open_store
from localchat.errors import Conflict, NotFound, ReadOnlySession, SessionClosed, ValidationError
from localchat.repository import create_user, get_user_by_email, list_users
from localchat.web import (
    ConversationRepository,
    Dependencies,
    RequestSession,
    UserRepository,
    configure,
    current_store,
    get_db,
    get_db_session,
    get_read_db,
    init_db,
)

fastapi = pytest.importorskip("fastapi", reason="the web extra: pip install 'localchat[web]'")
from fastapi import Depends, FastAPI, HTTPException  # noqa: E402
from fastapi.responses import StreamingResponse  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402


@pytest.fixture
def store(db_path: Path):
    store = open_store(db_path)
    store.upgrade()
    return store


def _emails(store) -> list[str]:
    with store.read_session() as s:
        return [u.email for u in list_users(s)]


def _idle(store) -> bool:
    """No connection of the store's pools is checked out."""
    return not store.db._in_use and not store.read_db._in_use


def test_the_web_module_imports_without_fastapi_or_pydantic():
    code = (
        "import sys\n"
        "for name in ('fastapi', 'starlette', 'pydantic', 'httpx'):\n"
        "    sys.modules[name] = None  # any import of them fails\n"
        "import localchat, localchat.web\n"
        "assert localchat.web.get_db and localchat.web.ConversationRepository\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_schemas_module_without_pydantic_names_the_extra():
    code = "import sys\nsys.modules['pydantic'] = None\nimport localchat.schemas\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert "pip install 'localchat[web]'" in result.stderr.splitlines()[-1]


# -- the generator dependency, driven by hand ---------------------------------


def test_get_db_commits_when_the_request_succeeds(store):
    gen = Dependencies(store).get_db()
    s = next(gen)
    create_user(s, "ada@example.org")
    with pytest.raises(StopIteration):
        next(gen)
    assert _emails(store) == ["ada@example.org"]
    assert s.closed and _idle(store)


def test_get_db_rolls_back_when_the_request_raises(store):
    gen = Dependencies(store).get_db()
    s = next(gen)
    create_user(s, "ada@example.org")
    with pytest.raises(RuntimeError):
        gen.throw(RuntimeError("the endpoint failed"))
    assert _emails(store) == []
    assert s.closed and _idle(store)


def test_get_db_rolls_back_when_the_generator_is_closed(store):
    gen = Dependencies(store).get_db()
    s = next(gen)
    create_user(s, "ada@example.org")
    gen.close()  # what a cancelled request does
    assert _emails(store) == []
    assert s.closed and _idle(store)


def test_a_file_stored_by_a_request_that_fails_is_removed_with_its_row(store, src):
    from localchat.repository import create_document_with_file

    gen = Dependencies(store).get_db()
    s = next(gen)
    create_document_with_file(s, src)
    assert [p for p in store.files_dir.iterdir() if not p.name.startswith(".")]
    with pytest.raises(RuntimeError):
        gen.throw(RuntimeError("the endpoint failed after storing the file"))
    assert [p for p in store.files_dir.iterdir() if not p.name.startswith(".")] == []
    assert store.table_counts()["document"] == 0


def test_a_request_session_may_begin_in_one_thread_and_end_in_another(store):
    gen = Dependencies(store).get_db()
    s = next(gen)  # entered here
    worker = threading.Thread(target=create_user, args=(s, "ada@example.org"))
    worker.start()
    worker.join()
    done = threading.Thread(target=lambda: next(gen, None))  # left in a third thread
    done.start()
    done.join()
    assert _emails(store) == ["ada@example.org"]
    assert s.closed and _idle(store)


def test_a_request_that_never_touches_the_store_opens_no_connection(store):
    gen = Dependencies(store).get_db()
    s = next(gen)
    assert _idle(store)  # nothing checked out while the request runs
    next(gen, None)
    assert s.closed and _idle(store)


def test_an_ended_request_session_refuses_calls(store):
    gen = Dependencies(store).get_db()
    s = next(gen)
    next(gen, None)
    with pytest.raises(SessionClosed):
        create_user(s, "ada@example.org")
    with pytest.raises(SessionClosed):
        s.db.execute_sql("SELECT 1")
    assert _emails(store) == []


def test_using_the_database_directly_begins_the_request_transaction(store):
    from localchat.models import User

    gen = Dependencies(store).get_db()
    s = next(gen)
    s.db.execute_sql(
        'INSERT INTO "user" (uuid, is_active, created_at, updated_at) '
        "VALUES ('00000000000040008000000000000001', 1, '2026-01-01', '2026-01-01')"
    )
    with pytest.raises(RuntimeError):
        gen.throw(RuntimeError("rolled back"))
    with store.read_session():
        assert User.select().count() == 0


def test_a_failed_call_inside_the_request_leaves_the_request_usable(store):
    gen = Dependencies(store).get_db()
    s = next(gen)
    create_user(s, "ada@example.org")
    with pytest.raises(Conflict):
        create_user(s, "ada@example.org")
    create_user(s, "bob@example.org")
    next(gen, None)
    assert _emails(store) == ["ada@example.org", "bob@example.org"]


def test_commit_inside_the_request_keeps_what_was_written_before_a_later_failure(store):
    gen = Dependencies(store).get_db()
    s = next(gen)
    create_user(s, "ada@example.org")
    s.commit()
    create_user(s, "bob@example.org")
    with pytest.raises(RuntimeError):
        gen.throw(RuntimeError("later"))
    assert _emails(store) == ["ada@example.org"]
    assert _idle(store)


def test_get_read_db_refuses_writes_and_does_not_block_a_writer(store):
    gen = Dependencies(store).get_read_db()
    s = next(gen)
    assert list_users(s) == []  # its snapshot is open
    with store.session() as w:  # a writer goes ahead meanwhile
        create_user(w, "ada@example.org")
    assert list_users(s) == []  # still the snapshot
    with pytest.raises(ReadOnlySession):
        create_user(s, "bob@example.org")
    next(gen, None)
    assert _emails(store) == ["ada@example.org"]
    assert s.closed and _idle(store)


def test_get_db_session_commits_rolls_back_and_releases(store):
    deps = Dependencies(store)
    with deps.get_db_session() as s:
        create_user(s, "ada@example.org")
    with pytest.raises(RuntimeError), deps.get_db_session() as s:
        create_user(s, "bob@example.org")
        raise RuntimeError("boom")
    assert _emails(store) == ["ada@example.org"]
    assert _idle(store)


# -- which store ----------------------------------------------------------------


def test_module_dependencies_use_the_default_store_until_configured(tmp_path, monkeypatch):
    default = tmp_path / "env.db"
    monkeypatch.setenv("LOCALCHAT_DB_PATH", str(default))
    try:
        assert current_store().path == default
        init_db()
        with get_db_session() as s:
            create_user(s, "ada@example.org")
        chosen = configure(tmp_path / "app.db")
        assert current_store() is chosen
        gen = get_db()
        create_user(next(gen), "bob@example.org")
        next(gen, None)
        gen = get_read_db()
        assert [u.email for u in list_users(next(gen))] == ["bob@example.org"]
        next(gen, None)
    finally:
        configure()
    assert current_store().path == default
    assert _emails(current_store()) == ["ada@example.org"]


# -- under FastAPI -----------------------------------------------------------------


def _app(store) -> tuple[FastAPI, list[RequestSession]]:
    deps = Dependencies(store)
    seen: list[RequestSession] = []
    app = FastAPI()

    @app.post("/users/{email}")
    def add(email: str, fail: str = "", db: RequestSession = Depends(deps.get_db)):
        seen.append(db)
        create_user(db, email)
        if fail == "http":
            raise HTTPException(409, "refused after writing")
        if fail == "error":
            raise RuntimeError("bug after writing")
        return {"ok": True}

    @app.post("/async-users/{email}")
    async def add_async(email: str, db: RequestSession = Depends(deps.get_db)):
        seen.append(db)
        return {"id": create_user(db, email).id}

    @app.post("/streamed/{email}")
    def streamed(email: str, db: RequestSession = Depends(deps.get_db)):
        seen.append(db)
        create_user(db, email)

        def body():
            for i in range(50):
                yield f"chunk {i}\n"

        return StreamingResponse(body(), media_type="text/plain")

    return app, seen


def test_a_request_that_succeeds_commits_under_fastapi(store):
    app, seen = _app(store)
    with TestClient(app) as client:
        assert client.post("/users/ada@example.org").status_code == 200
        assert client.post("/async-users/bob@example.org").status_code == 200
    assert _emails(store) == ["ada@example.org", "bob@example.org"]
    assert all(s.closed for s in seen) and _idle(store)


@pytest.mark.parametrize("fail", ["http", "error"])
def test_an_exception_inside_the_request_rolls_back_under_fastapi(store, fail):
    app, seen = _app(store)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/users/ada@example.org", params={"fail": fail})
    assert response.status_code == (409 if fail == "http" else 500)
    assert _emails(store) == []
    assert seen[0].closed and _idle(store)


def test_a_client_that_disconnects_mid_response_rolls_back_and_releases(store, disconnecting_call):
    app, seen = _app(store)
    sent = disconnecting_call(app, "POST", "/streamed/ada@example.org", chunks=1)
    assert sent[0]["status"] == 200 and len(sent) < 50  # the stream was cut short
    assert _emails(store) == []
    assert seen[0].closed and _idle(store)


def test_a_request_that_finds_the_store_busy_waits_for_the_writer_outside_a_server(store):
    """No anyio worker thread to lend: the request session just waits, as a session does."""
    holding, release = threading.Event(), threading.Event()

    def writer():
        with store.session() as s:
            create_user(s, "first@example.org")
            holding.set()
            release.wait(5)

    thread = threading.Thread(target=writer)
    thread.start()
    holding.wait(5)
    gen = Dependencies(store).get_db()
    db = next(gen)
    threading.Timer(0.2, release.set).start()
    create_user(db, "second@example.org")  # begins: busy, then waits for the writer
    with pytest.raises(StopIteration):
        next(gen)
    thread.join()
    assert _emails(store) == ["first@example.org", "second@example.org"]
    assert db.closed and _idle(store)


def test_more_writers_than_threads_that_do_not_commit_all_succeed_under_fastapi(store):
    """60 ``def`` endpoints on ``get_db`` writing at once, none committing itself.

    FastAPI's pool has 40 threads and validates a ``def`` endpoint's response
    in it before it leaves the dependency: the writer holding the lock needs a
    thread while the others wait for the lock in theirs. A waiting writer
    lends the pool its thread back, so nobody waits for the busy timeout.
    """
    import asyncio

    import httpx

    from localchat.schemas import UserSchema

    deps, seen = Dependencies(store), []
    app = FastAPI()

    @app.post("/users/{email}", response_model=UserSchema)  # validated in the thread pool
    def add(email: str, db: RequestSession = Depends(deps.get_db)):
        seen.append(db)
        return create_user(db, email)

    async def post_all():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            calls = [client.post(f"/users/user{i}@example.org") for i in range(60)]
            return await asyncio.gather(*calls)

    responses = asyncio.run(post_all())
    assert sorted({r.status_code for r in responses}) == [200]
    assert len(_emails(store)) == 60
    assert all(s.closed for s in seen) and _idle(store)


# -- the repository classes ---------------------------------------------------------


def test_user_repository_gets_or_creates_by_email(store):
    with store.session() as s:
        ada = UserRepository.get_or_create(s, "Ada@Example.org")
        assert UserRepository.get_or_create(s, "ada@example.org") == ada
        assert UserRepository.get_by_email(s, "ADA@example.org") == ada
        assert UserRepository.get_by_email(s, "nobody@example.org") is None


def test_conversation_repository_is_keyed_by_thread_id_and_email(store):
    with store.session() as s:
        UserRepository.get_or_create(s, "ada@example.org")
        conv = ConversationRepository.create(s, "thread-1", "ada@example.org", "Trip", "hi")
        assert (conv.thread_id, conv.title, conv.last_message) == ("thread-1", "Trip", "hi")
        assert ConversationRepository.get_by_thread_id(s, "thread-1") == conv
        ConversationRepository.create(s, "thread-2", "ada@example.org")
        assert [c.thread_id for c in ConversationRepository.get_by_user_email(
            s, "ada@example.org", limit=1, offset=1)] == ["thread-1"]  # fmt: skip
        assert ConversationRepository.count_by_user(s, "ada@example.org") == 2
        updated = ConversationRepository.update(s, "thread-1", title="Trip to Oslo")
        assert updated is not None and updated.title == "Trip to Oslo"
        assert ConversationRepository.update(s, "no-such-thread", title="x") is None
        same = ConversationRepository.get_or_create(s, "thread-1", "ada@example.org")
        assert same == conv
        new = ConversationRepository.get_or_create(s, "thread-3", "ada@example.org", "New")
        assert new.title == "New"
        assert ConversationRepository.delete(s, "thread-2") is True
        assert ConversationRepository.delete(s, "thread-2") is False
        assert ConversationRepository.count_by_user(s, "ada@example.org") == 2
        assert ConversationRepository.get_by_user_email(s, "nobody@example.org") == []


def test_conversation_repository_refuses_bad_input_and_writes_nothing(store, snapshot):
    with store.session() as s:
        UserRepository.get_or_create(s, "ada@example.org")
        ConversationRepository.create(s, "thread-1", "ada@example.org")
        before = snapshot(s)
        with pytest.raises(Conflict):
            ConversationRepository.create(s, "thread-1", "ada@example.org")
        with pytest.raises(NotFound):
            ConversationRepository.create(s, "thread-9", "nobody@example.org")
        with pytest.raises(ValidationError):
            ConversationRepository.get_by_user_email(s, "")
        assert snapshot(s) == before


# -- the source documents' examples, only their imports changed ----------------------


SEED_002_FASTAPI = """
from fastapi import Depends
from localchat import Session
from localchat.web import get_db, ConversationRepository

@app.get("/conversations")
async def get_conversations(db: Session = Depends(get_db)):
    conversations = ConversationRepository.get_by_user_email(db, "user@example.com")
    return conversations
"""

SEED_002_IMPORTS = """
from localchat.web import (
    get_db, get_db_session, init_db,
    UserRepository, ConversationRepository
)
from localchat.models import User, Conversation
init_db()
"""


def test_the_web_backend_documents_fastapi_example_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALCHAT_DB_PATH", str(tmp_path / "chat.db"))
    namespace = {"app": FastAPI()}
    exec(SEED_002_IMPORTS, namespace)
    exec(SEED_002_FASTAPI, namespace)
    with get_db_session() as s:
        UserRepository.get_or_create(s, "user@example.com")
        ConversationRepository.create(s, "t-1", "user@example.com", "Hello")
        hashed = create_user(s, "other@example.org", _hash("pw"))
    with TestClient(namespace["app"]) as client:
        body = client.get("/conversations").json()
    assert [(c["thread_id"], c["title"]) for c in body] == [("t-1", "Hello")]
    with get_db_session(readonly=True) as s:
        assert body == [ConversationRepository.get_by_thread_id(s, "t-1").to_dict()]
        assert get_user_by_email(s, "other@example.org") == hashed


def test_a_returned_user_row_never_sends_its_password_hash(store):
    app = FastAPI()
    deps = Dependencies(store)

    @app.get("/me")
    def me(db: RequestSession = Depends(deps.get_read_db)):
        return UserRepository.get_by_email(db, "ada@example.org")

    with store.session() as s:
        ada = create_user(s, "ada@example.org", _hash("s3cret"))
    with TestClient(app) as client:
        body = client.get("/me").json()
    assert body == ada.to_dict()
    assert "password_hash" not in body and "scrypt" not in str(body)


def _hash(password: str) -> str:
    from localchat.repository import hash_password

    return hash_password(password)


def test_request_sessions_commit_and_roll_back_on_postgresql(pg_url):
    from localchat import reset_db

    reset_db(url=pg_url)
    store = open_store(url=pg_url)
    deps = Dependencies(store)
    gen = deps.get_db()
    create_user(next(gen), "ada@example.org")
    next(gen, None)
    gen = deps.get_db()
    create_user(next(gen), "bob@example.org")
    with pytest.raises(RuntimeError):
        gen.throw(RuntimeError("the endpoint failed"))
    gen = deps.get_read_db()
    s = next(gen)
    assert [u.email for u in list_users(s)] == ["ada@example.org"]
    with pytest.raises(ReadOnlySession):
        create_user(s, "carol@example.org")
    next(gen, None)
    assert s.closed
