"""The example web API (examples/web_api.py): every endpoint, and bad input changing nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import sys
from pathlib import Path

import pytest

from localchat.repository import (
    add_message,
    create_conversation,
    create_user,
    create_web_session,
    hash_password,
    list_messages_for_conversation,
)

pytest.importorskip("fastapi", reason="the web extra: pip install 'localchat[web]'")
pytest.importorskip("multipart", reason="the web extra: pip install 'localchat[web]'")
from fastapi.testclient import TestClient  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "web_api.py"
LIMIT = 1000


def _load_example():
    spec = importlib.util.spec_from_file_location("localchat_example_web_api", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


web_api = _load_example()
_HASHES: dict[str, str] = {}


def _hashed(password: str) -> str:
    """One hash per password for the whole module (the KDF is slow on purpose)."""
    if password not in _HASHES:
        _HASHES[password] = hash_password(password)
    return _HASHES[password]


@pytest.fixture
def app(db_path):
    return web_api.create_app(db_path, max_upload_bytes=LIMIT)


@pytest.fixture
def store(app):
    return app.state.store


@pytest.fixture
def users(store):
    with store.session() as s:
        ada = create_user(s, "ada@example.org", _hashed("s3cret"), username="ada")
        bob = create_user(s, "bob@example.org", _hashed("hunter2"), username="bob")
        return ada.id, bob.id


@pytest.fixture
def client(app, store, users):
    """Ada's browser, signed in (a web session made directly: login is tested on its own)."""
    with store.session() as s:
        create_web_session(s, "ada-browser-token", users[0])
    with TestClient(app) as client:
        client.cookies.set(web_api.COOKIE, "ada-browser-token")
        yield client


def _rows(store):
    return store.table_counts()


def _files(store) -> list[str]:
    folder = store.files_dir
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def _idle(store) -> bool:
    return not store.db._in_use and not store.read_db._in_use


# -- signing in ------------------------------------------------------------------


def test_login_sets_an_http_only_strict_cookie(app, users):
    with TestClient(app) as client:
        response = client.post("/login", json={"login": "ada@example.org", "password": "s3cret"})
        assert response.status_code == 200
        assert response.json()["email"] == "ada@example.org"
        assert "password_hash" not in response.json()
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert client.get("/me").json()["username"] == "ada"


def test_a_wrong_password_is_refused_and_stores_no_session(app, users, store):
    before = _rows(store)
    with TestClient(app) as client:
        response = client.post("/login", json={"login": "ada", "password": "nope"})
    assert response.status_code == 401
    assert _rows(store) == before


def test_logout_ends_the_session(client, store):
    assert client.post("/logout").status_code == 204
    assert _rows(store)["web_session"] == 0
    assert client.get("/me").status_code == 401


@pytest.mark.parametrize("cookie", [None, "not-a-token", "expired"])
def test_no_valid_session_means_401_and_nothing_written(app, store, users, cookie):
    if cookie == "expired":
        with store.session() as s:
            past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)
            create_web_session(s, "expired", users[0], issued_at=past,
                               expires_at=past + dt.timedelta(hours=1))  # fmt: skip
    with store.session() as s:
        conv = create_conversation(s, users[0], title="Mine", external_id="t-1")
    before = _rows(store)
    with TestClient(app) as client:
        if cookie:
            client.cookies.set(web_api.COOKIE, cookie)
        calls = [
            client.get("/conversations"),
            client.post("/conversations", json={"title": "x"}),
            client.get(f"/conversations/{conv.thread_id}"),
            client.post(f"/conversations/{conv.thread_id}/messages", json={"content": "hi"}),
            client.post(f"/conversations/{conv.thread_id}/reply"),
            client.post("/documents", files={"file": ("a.txt", b"hello")}),
            client.get("/search", params={"q": "hi"}),
        ]
    assert [r.status_code for r in calls] == [401] * len(calls)
    assert _rows(store) == before and _files(store) == []
    assert _idle(store)


# -- conversations and messages ----------------------------------------------------


def test_create_list_open_and_post(client, store):
    created = client.post("/conversations", json={"title": "Trip"})
    assert created.status_code == 201
    thread = created.json()["thread_id"]
    listed = client.get("/conversations").json()
    assert [c["thread_id"] for c in listed] == [thread]
    posted = client.post(f"/conversations/{thread}/messages", json={"content": "to Oslo"})
    assert posted.status_code == 201 and posted.json()["role"] == "user"
    opened = client.get(f"/conversations/{thread}").json()
    assert opened["conversation"]["title"] == "Trip"
    assert [m["content"] for m in opened["messages"]] == ["to Oslo"]
    with store.read_session() as s:
        (row,) = list_messages_for_conversation(s, thread)
        assert opened["messages"] == [row.to_dict()]


def test_another_users_or_unknown_conversation_is_404_and_unchanged(client, store, users):
    with store.session() as s:
        theirs = create_conversation(s, users[1], title="Bob's", external_id="bob-1")
    before = _rows(store)
    for thread in (theirs.thread_id, "no-such-thread"):
        assert client.get(f"/conversations/{thread}").status_code == 404
        reply = client.post(f"/conversations/{thread}/messages", json={"content": "hi"})
        assert reply.status_code == 404
        assert client.post(f"/conversations/{thread}/reply").status_code == 404
    assert client.get("/conversations").json() == []
    assert _rows(store) == before


def test_an_empty_message_is_refused_and_nothing_written(client, store):
    thread = client.post("/conversations", json={}).json()["thread_id"]
    before = _rows(store)
    response = client.post(f"/conversations/{thread}/messages", json={"content": ""})
    assert response.status_code == 422
    assert _rows(store) == before


# -- the streamed reply --------------------------------------------------------------


def test_the_echo_reply_streams_and_is_saved_complete(client, store):
    thread = client.post("/conversations", json={"title": "Echo"}).json()["thread_id"]
    client.post(f"/conversations/{thread}/messages", json={"content": "hello there world"})
    with client.stream("POST", f"/conversations/{thread}/reply") as response:
        assert response.status_code == 200
        text = "".join(response.iter_text())
    assert text == "hello there world"
    with store.read_session() as s:
        question, answer = list_messages_for_conversation(s, thread)
    assert (answer.role, answer.content, answer.status) == ("assistant", text, "complete")
    assert answer.parent_id == question.id
    assert _idle(store)


def test_a_reply_needs_a_user_message_last(client, store):
    thread = client.post("/conversations", json={}).json()["thread_id"]
    before = _rows(store)
    assert client.post(f"/conversations/{thread}/reply").status_code == 409
    assert _rows(store) == before


def test_a_client_that_disconnects_mid_reply_leaves_it_incomplete_and_releases(
    app, store, users, disconnecting_call
):
    with store.session() as s:
        conv = create_conversation(s, users[0], external_id="t-1")
        add_message(s, conv.id, "user", " ".join(f"word{i}" for i in range(40)))
        create_web_session(s, "ada-token", users[0])
    cookie = f"{web_api.COOKIE}=ada-token"
    sent = disconnecting_call(app, "POST", "/conversations/t-1/reply", cookie=cookie, chunks=2)
    streamed = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    with store.read_session() as s:
        question, answer = list_messages_for_conversation(s, "t-1")
    assert answer.status == "incomplete"
    assert answer.content and question.content.startswith(answer.content)
    assert streamed.decode() == answer.content[: len(streamed)]  # nothing sent was lost
    assert answer.content != question.content
    assert _idle(store)


# -- documents ----------------------------------------------------------------------


def test_upload_and_download_a_document(client, store):
    thread = client.post("/conversations", json={}).json()["thread_id"]
    up = client.post(
        "/documents", params={"thread_id": thread}, files={"file": ("Notes.txt", b"hello doc")}
    )
    assert up.status_code == 201, up.text
    doc = up.json()
    assert (doc["filename"], doc["size"]) == ("Notes.txt", 9)
    down = client.get(f"/documents/{doc['uuid']}")
    assert down.status_code == 200 and down.content == b"hello doc"
    assert "Notes.txt" in down.headers["content-disposition"]


def test_an_oversized_upload_is_413_with_no_row_and_no_file(client, store):
    before = _rows(store)
    response = client.post("/documents", files={"file": ("big.bin", b"x" * (LIMIT + 1))})
    assert response.status_code == 413
    assert _rows(store) == before and _files(store) == []
    exact = client.post("/documents", files={"file": ("ok.bin", b"x" * LIMIT)})
    assert exact.status_code == 201


def test_upload_to_an_unknown_conversation_is_404_with_no_row_and_no_file(client, store):
    before = _rows(store)
    response = client.post(
        "/documents", params={"thread_id": "nope"}, files={"file": ("a.txt", b"hello")}
    )
    assert response.status_code == 404
    assert _rows(store) == before and _files(store) == []


def test_another_users_or_unknown_document_is_404(client, app, store):
    doc = client.post("/documents", files={"file": ("a.txt", b"mine")}).json()
    with TestClient(app) as bob:
        assert bob.post("/login", json={"login": "bob", "password": "hunter2"}).status_code == 200
        assert bob.get(f"/documents/{doc['uuid']}").status_code == 404
    assert client.get("/documents/not-a-uuid").status_code == 404
    assert client.get("/documents/00000000-0000-4000-8000-000000000000").status_code == 404


# -- search -------------------------------------------------------------------------


def test_search_finds_only_the_users_own_messages(client, store, users):
    thread = client.post("/conversations", json={"title": "Trip"}).json()["thread_id"]
    client.post(f"/conversations/{thread}/messages", json={"content": "the museum in Oslo"})
    with store.session() as s:
        theirs = create_conversation(s, users[1])
        add_message(s, theirs.id, "user", "a museum in Bergen")
    hits = client.get("/search", params={"q": "museum"}).json()
    assert [h["conversation"]["thread_id"] for h in hits] == [thread]
    assert "[museum]" in hits[0]["snippet"]
    assert client.get("/search", params={"q": ""}).json() == []


# -- many writers at once ---------------------------------------------------------------


def _at_once(app, calls):
    """Send ``calls(client)`` (a list of request coroutines) concurrently; the responses."""
    import httpx

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await asyncio.gather(*calls(client))

    return asyncio.run(run())


def test_more_concurrent_async_posts_than_threads_all_succeed(app, store, users):
    """100 posts at once to an ``async def`` endpoint on ``get_async_db``, none committing
    itself (FastAPI's pool has 40 threads): all 201, no "database is locked".

    They wait for the write lock on the event loop, not in threads, and their
    sessions commit when the request ends without needing a thread.
    """
    with store.session() as s:
        conv = create_conversation(s, users[0], external_id="t-1")
        create_web_session(s, "ada-token", users[0])
    headers = {"cookie": f"{web_api.COOKIE}=ada-token"}
    responses = _at_once(app, lambda client: [
        client.post("/conversations/t-1/messages", json={"content": f"m{i}"}, headers=headers)
        for i in range(100)
    ])  # fmt: skip
    assert sorted({r.status_code for r in responses}) == [201]
    with store.read_session() as s:
        stored = list_messages_for_conversation(s, conv.id, limit=None)
    assert sorted(m.content for m in stored) == sorted(f"m{i}" for i in range(100))
    assert _idle(store)


def test_more_concurrent_sync_uploads_than_threads_all_succeed(app, store, users):
    """60 uploads at once to a ``def`` endpoint on ``get_db`` (40 threads): all 201.

    A write transaction open until the request ends holds the write lock while
    its response waits for a free thread, with every thread waiting for that
    lock, unless the endpoint commits first or the waiters lend their threads.
    """
    with store.session() as s:
        create_web_session(s, "ada-token", users[0])
    headers = {"cookie": f"{web_api.COOKIE}=ada-token"}
    responses = _at_once(app, lambda client: [
        client.post("/documents", files={"file": (f"f{i}.txt", b"x%d" % i)}, headers=headers)
        for i in range(60)
    ])  # fmt: skip
    assert sorted({r.status_code for r in responses}) == [201]
    assert _rows(store)["document"] == 60 and len(_files(store)) == 60
    assert _idle(store)
