"""Every public data-access function: the session is ``session`` (first, by keyword too),
and hostile values in any argument come back as a localchat error (or a normal
result), never as a raw Python or driver error, with the database unchanged.

``CALLS`` holds one valid call per function; the tests take it and change one
argument at a time. A new public function needs an entry (a test says so).
"""

from __future__ import annotations

import datetime as dt
import inspect
import io
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import localchat.repository as repo
from localchat import export, search
from localchat.errors import LocalchatError, NoSession, ValidationError
from localchat.repository import (
    _passwords,
    add_chat_exchange,
    add_message,
    create_conversation,
    create_document_with_file,
    create_model,
    create_prompt,
    create_service,
    create_user,
    create_web_session,
    hash_password,
    log_generation,
    record_response,
    start_reply,
    upsert_knowledge_chunk,
)
from localchat.search import index as search_index

T0 = dt.datetime(2020, 1, 1)
PASSWORD_HASH = hash_password("pw")  # once: the KDF takes a quarter of a second


def build_world(
    s: Any, tmp_path: Path | None = None, password_hash: str = PASSWORD_HASH
) -> types.SimpleNamespace:
    """One row of every kind, for the calls below to name."""
    user = create_user(s, "ada@example.org", password_hash, username="ada", external_id="ext-ada")
    create_web_session(s, "tok", user.id)
    conv = create_conversation(s, user.id, title="t", external_id="thread-1")
    question = add_message(s, conv.id, "user", "hi there")
    answer = add_message(s, conv.id, "assistant", "hello")
    record_response(s, answer.id, "gpt", 1, 2)
    reply = add_message(s, conv.id, "assistant", "second", parent_id=question.id)
    exchange = add_chat_exchange(s, conv.id, "q", assistant_message="a")
    streaming = start_reply(s, conv.id, parent_id=question.id)
    create_prompt(s, "p1", "Greeting", {"text": "Hello {name}"})
    service = create_service(s, "svc", "openai")
    model = create_model(s, service.id, "gpt", supports_tools=True, context_window=4096)
    chunk = upsert_knowledge_chunk(s, "docs", "some text", external_id="c1", title="T")
    log = log_generation(s, "u1", "doc", {"a": 1}, {"b": 2}, tokens_used=3)
    doc = None
    if tmp_path is not None:
        src = tmp_path / "hello.txt"
        src.write_text("hello")
        doc = create_document_with_file(s, src_path=src, tags=["t"], user_id=user.id)
    return types.SimpleNamespace(**locals())


def _rows(w: Any) -> list[dict[str, Any]]:
    return [{"conversation_id": w.conv.id, "role": "user", "content": "imported"}]


#: One valid call of every public function that takes a session: name -> world -> kwargs.
# fmt: off
CALLS: dict[str, Callable[[Any], dict[str, Any]]] = {
    # users
    "create_user": lambda w: dict(
        email="new@example.org", password_hash=PASSWORD_HASH, name="N", username="new",
        full_name="New One", external_id="ext-new", is_active=True,
    ),
    "get_user": lambda w: dict(user_id=w.user.id),
    "get_user_by_email": lambda w: dict(email="ada@example.org"),
    "get_user_by_username": lambda w: dict(username="ada"),
    "get_user_by_external_id": lambda w: dict(external_id="ext-ada"),
    "get_or_create_user_by_external_id": lambda w: dict(
        external_id="ext-2", email="two@example.org", name="Two"
    ),
    "get_or_create_user_by_email": lambda w: dict(email="three@example.org", name="Three"),
    "list_users": lambda w: dict(limit=10, offset=0),
    "update_user": lambda w: dict(user_id=w.user.id, name="Ada L", is_active=True),
    "delete_user": lambda w: dict(user_id=w.user.id),
    "authenticate": lambda w: dict(login="ada", password="pw"),
    "set_password": lambda w: dict(user_id=w.user.id, password="new pw"),
    "create_web_session": lambda w: dict(
        session_id="tok2", user_id=w.user.id, issued_at=T0,
        expires_at=T0 + dt.timedelta(days=1), ip_net="10.0.0.0/8", user_agent="ua",
    ),
    "get_web_session": lambda w: dict(token="tok"),
    "update_web_session": lambda w: dict(token="tok", user_agent="x", ip_net="10.1.2.3"),
    "delete_web_session": lambda w: dict(token="tok"),
    "purge_expired_web_sessions": lambda w: dict(),
    # conversations
    "create_conversation": lambda w: dict(
        user_id=w.user.id, title="t", status="active", default_model="m",
        external_id="thread-9", last_message="x", user_email=None,
    ),
    "get_conversation_by_id": lambda w: dict(conversation_id=w.conv.id),
    "get_conversation_by_uuid": lambda w: dict(conversation_uuid=str(w.conv.uuid)),
    "get_conversation_by_thread_id": lambda w: dict(thread_id="thread-1"),
    "get_or_create_conversation": lambda w: dict(
        thread_id="thread-2", user_id=w.user.id, title="t", last_message="m", user_email=None
    ),
    "list_conversations_for_user": lambda w: dict(
        user_id=w.user.id, status="active", limit=10, offset=0, user_email=None
    ),
    "list_all_conversations": lambda w: dict(status="active", limit=10, offset=0),
    "count_conversations_for_user": lambda w: dict(
        user_id=w.user.id, status="active", user_email=None
    ),
    "update_conversation": lambda w: dict(
        conversation_id=w.conv.id, title="n", status="archived", default_model="m",
        last_message="l",
    ),
    "archive_conversation": lambda w: dict(conversation_id=w.conv.id),
    "delete_conversation": lambda w: dict(conversation_id=w.conv.id),
    # messages
    "add_message": lambda w: dict(
        conversation_id=w.conv.id, sender_type="user", content="x", role_metadata={"k": [1]},
        parent_id=w.answer.id, model="m",
    ),
    "add_sibling": lambda w: dict(
        message_id=w.answer.id, content="again", role_metadata={"k": 1}, model="m"
    ),
    "get_message_by_id": lambda w: dict(message_id=w.answer.id),
    "get_latest_message": lambda w: dict(conversation_id=w.conv.id),
    "list_messages_for_conversation": lambda w: dict(
        conversation_id=w.conv.id, limit=10, offset=0, sender_type="user", latest=False
    ),
    "get_conversation_message_count": lambda w: dict(conversation_id=w.conv.id),
    "get_thread": lambda w: dict(leaf_id=w.answer.id),
    "list_children": lambda w: dict(message_id=w.question.id),
    "delete_message": lambda w: dict(message_id=w.answer.id),
    "record_response": lambda w: dict(
        message_id=w.reply.id, model_used="gpt", tokens_prompt=1, tokens_completion=2,
        tokens_total=3, completion_time_ms=4, options={"t": 1}, usage_details={"u": 2},
    ),
    "get_response_for_message": lambda w: dict(message_id=w.answer.id),
    "import_messages": lambda w: dict(rows=_rows(w)),
    "update_message": lambda w: dict(
        message_id=w.answer.id, content="c", metadata={"k": 1}, status="error", error="e"
    ),
    "switch_branch": lambda w: dict(message_id=w.question.id),
    "get_current_leaf": lambda w: dict(conversation_id=w.conv.id),
    "list_versions": lambda w: dict(message_id=w.answer.id),
    # streaming
    "start_reply": lambda w: dict(
        conversation_id=w.conv.id, parent_id=w.question.id, replaces=None, model="m",
        metadata={"k": 1},
    ),
    "append_to_reply": lambda w: dict(message_id=w.streaming.id, text="more"),
    "finish_reply": lambda w: dict(
        message_id=w.streaming.id, status="error", error="e", content="c"
    ),
    "mark_interrupted_replies": lambda w: dict(),
    # exchanges
    "add_chat_exchange": lambda w: dict(
        chat_session_id=w.conv.id, user_message="q", rag_prompt="r", assistant_message="a",
        html_response="<p>a</p>", context_used=[{"info": 1}],
    ),
    "get_chat_exchange": lambda w: dict(exchange_id=w.exchange.id),
    "list_chat_exchanges": lambda w: dict(chat_session_id=w.conv.id),
    "update_chat_exchange": lambda w: dict(
        exchange_id=w.exchange.id, assistant_message="b", rag_prompt="r"
    ),
    "delete_chat_exchange": lambda w: dict(exchange_id=w.exchange.id),
    # prompts
    "create_prompt": lambda w: dict(key="p2", name="n", content={"text": "Hi {name}"}),
    "get_prompt": lambda w: dict(key="p1"),
    "update_prompt": lambda w: dict(key="p1", name="n2", content={"text": "Yo {name}"}),
    "delete_prompt": lambda w: dict(key="p1"),
    "list_prompts": lambda w: dict(limit=10, offset=0),
    # LLM registry
    "create_service": lambda w: dict(
        name="svc2", provider="openai", base_url="https://h.example/v1", auth_ref="env:KEY"
    ),
    "get_service": lambda w: dict(service_id=w.service.id),
    "list_services": lambda w: dict(limit=10, offset=0),
    "update_service": lambda w: dict(service_id=w.service.id, provider="other"),
    "delete_service": lambda w: dict(service_id=w.service.id),
    "create_model": lambda w: dict(
        service_id=w.service.id, name="m2", modality="chat", supports_tools=False,
        context_window=1000,
    ),
    "get_model": lambda w: dict(model_id=w.model.id),
    "get_model_by_name": lambda w: dict(service_id=w.service.id, name="gpt"),
    "list_models": lambda w: dict(service_id=w.service.id, limit=10, offset=0),
    "update_model": lambda w: dict(model_id=w.model.id, context_window=5),
    "delete_model": lambda w: dict(model_id=w.model.id),
    "build_invocation": lambda w: dict(
        service_id=w.service.id, model_name="gpt",
        messages=[{"role": "user", "content": "hi"}], temperature=0.5, max_tokens=10,
    ),
    # knowledge
    "upsert_knowledge_chunk": lambda w: dict(
        source="docs", content="more", external_id="c2", title="T", chunk_metadata={"m": 1}
    ),
    "bulk_upsert_knowledge_chunks": lambda w: dict(
        chunks=[{"source": "docs", "content": "bulk", "external_id": "c3"}]
    ),
    "get_knowledge_chunk_by_id": lambda w: dict(chunk_id=w.chunk.id),
    "get_knowledge_chunk_by_external_id": lambda w: dict(external_id="c1", source="docs"),
    "list_knowledge_chunks_by_source": lambda w: dict(source="docs", limit=10, offset=0),
    "list_all_knowledge_chunks": lambda w: dict(limit=10, offset=0),
    "delete_knowledge_chunk": lambda w: dict(chunk_id=w.chunk.id),
    # audit
    "log_generation": lambda w: dict(
        user_id="u2", document_type="doc", input_data={"i": 1}, generated_text={"g": 2},
        model_used="gpt", tokens_used=5, generation_time_ms=6, status="error",
        error_message="boom", document_version="2",
    ),
    "get_audit_log": lambda w: dict(log_id=w.log.id),
    "list_audit_logs_for_user": lambda w: dict(user_id="u1", limit=10, offset=0),
    "list_audit_logs_between": lambda w: dict(
        since=T0, until=dt.datetime(2100, 1, 1), limit=10, offset=0
    ),
    "count_generations_per_user": lambda w: dict(since=T0, until=dt.date(2100, 1, 1)),
    "average_generation_time_ms": lambda w: dict(since=T0, until=None),
    "average_generation_time_per_model": lambda w: dict(since=T0, until=None),
    "error_rate": lambda w: dict(since=None, until=dt.datetime(2100, 1, 1)),
    "tokens_per_model_per_day": lambda w: dict(since=dt.date(2000, 1, 1), until=None),
    # documents and the file store (swept by their own tests)
    "create_document": lambda w: dict(filename="a.txt", path=None, tags=["x"]),
    "create_document_with_file": lambda w: dict(src_path=w.src, original_filename="b.txt"),
    "get_document": lambda w: dict(document_id=w.doc.id),
    "list_documents": lambda w: dict(user_id=w.user.id, limit=10, offset=0),
    "update_document": lambda w: dict(document_id=w.doc.id, tags=["u"]),
    "attach_document": lambda w: dict(document_id=w.doc.id, conversation_id=w.conv.id),
    "delete_document": lambda w: dict(document_id=w.doc.id),
    # trash
    "trash_conversation": lambda w: dict(conversation_id=w.conv.id),
    "restore_conversation": lambda w: dict(conversation_id=w.conv.id),
    "trash_document": lambda w: dict(document_id=w.doc.id),
    "restore_document": lambda w: dict(document_id=w.doc.id),
    "list_trash": lambda w: dict(user_id=w.user.id),
    "empty_trash": lambda w: dict(older_than=dt.timedelta(days=30)),
    "open_document": lambda w: dict(document_id=w.doc.id),
    "release_owned_files": lambda w: dict(user_id=w.user.id),
    "verify_file_store": lambda w: dict(hashes=True),
    "repair_file_store": lambda w: dict(dry_run=True),
}
# fmt: on

#: Public functions outside ``localchat.repository`` that take a session.
OTHER_CALLS: dict[str, tuple[Callable[..., Any], Callable[[Any], dict[str, Any]]]] = {
    "export.iter_message_records": (
        export.iter_message_records,
        lambda w: dict(conversation_id=w.conv.id, batch_size=2),
    ),
    "export.export_messages_jsonl": (
        export.export_messages_jsonl,
        lambda w: dict(fp=io.StringIO(), batch_size=2),
    ),
    "search.search_messages": (search.search_messages, lambda w: dict(query="hello", limit=5)),
    "search.search_conversations": (search.search_conversations, lambda w: dict(query="hello")),
    "search.search_knowledge_chunks": (
        search.search_knowledge_chunks,
        lambda w: dict(query="text"),
    ),
    "search_index.rebuild_search_index": (search_index.rebuild_search_index, lambda w: dict()),
}

#: Owned and swept elsewhere (documents and the file store).
NOT_SWEPT = {
    "create_document", "create_document_with_file", "get_document", "list_documents",
    "update_document", "attach_document", "delete_document", "open_document",
    "release_owned_files", "verify_file_store", "repair_file_store",
    "trash_document", "restore_document",
}  # fmt: skip


def _takes_session(obj: Any) -> bool:
    if not callable(obj) or isinstance(obj, type):
        return False
    params = list(inspect.signature(obj).parameters)
    return bool(params) and params[0] in ("s", "session")


PUBLIC = sorted(name for name in repo.__all__ if _takes_session(getattr(repo, name)))


def _function(name: str) -> Callable[..., Any]:
    if name in OTHER_CALLS:
        return OTHER_CALLS[name][0]
    return getattr(repo, name)  # type: ignore[no-any-return]


def _call_args(name: str, world: Any) -> dict[str, Any]:
    table = OTHER_CALLS[name][1] if name in OTHER_CALLS else CALLS[name]
    return table(world)


def _consume(result: Any) -> Any:
    if inspect.isgenerator(result):
        return list(result)
    return result


def test_the_call_table_names_every_public_function_that_takes_a_session():
    assert sorted(CALLS) == PUBLIC


@pytest.mark.parametrize("name", PUBLIC + sorted(OTHER_CALLS))
def test_the_first_parameter_is_named_session(name):
    params = list(inspect.signature(_function(name)).parameters.values())
    assert params[0].name == "session"
    assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    inner = inspect.signature(inspect.unwrap(_function(name)))
    assert [p.name for p in params[1:]] == list(inner.parameters)[1:]


@pytest.mark.parametrize("name", PUBLIC + sorted(OTHER_CALLS))
def test_every_argument_can_be_passed_by_keyword_session_included(
    name, localchat_session, tmp_path
):
    world = build_world(localchat_session, tmp_path)
    world.src = tmp_path / "other.txt"
    world.src.write_text("other")
    _consume(_function(name)(session=localchat_session, **_call_args(name, world)))


def test_the_source_documents_audit_call_works_as_written(localchat_session):
    entry = log_generation(
        session=localchat_session,
        user_id="user_123",
        document_type="treatment_summary",
        input_data={"treatment_type": "clear aligners"},
        generated_text={"title": "Your Treatment Plan"},
        tokens_used=450,
        generation_time_ms=1250,
    )
    assert entry.user_id == "user_123" and entry.tokens_used == 450


def test_session_by_position_and_by_keyword_at_once_is_refused(localchat_session):
    with pytest.raises(TypeError, match="multiple values for argument 'session'"):
        repo.get_user(localchat_session, 1, session=localchat_session)


@pytest.mark.parametrize("not_a_session", [None, 0, "", object(), [], {}])
@pytest.mark.parametrize("name", ["get_user", "list_users", "log_generation"])
def test_anything_but_a_session_first_is_a_localchat_error(name, not_a_session):
    with pytest.raises(NoSession, match=rf"{name}\(\) takes a localchat session"):
        getattr(repo, name)(not_a_session)
    with pytest.raises(NoSession, match=rf"{name}\(\) takes a localchat session"):
        getattr(repo, name)(session=not_a_session)


# -- hostile values: only localchat errors, and a refused call changes nothing ---------

HOSTILE: list[Any] = [
    None, 0, -1, 2**70, -(2**70), True, 1.5, float("nan"), "", "\0", "a\0b", "\ud800",
    "x" * 1_000_000, b"x", [], {}, ["\ud800"], {"k": "\0"}, {"\ud800": 1}, object(),
]  # fmt: skip

#: The values PostgreSQL and its driver treat differently from SQLite.
HOSTILE_ON_POSTGRESQL: list[Any] = [
    "\0", "a\0b", "\ud800", 2**70, -(2**70), 2**63 - 1, 2**31, float("nan"), [],
    ["\ud800"], {"k": "\0"},
]  # fmt: skip

#: Raw errors the sweep exists to catch (anything not a LocalchatError is reported).
SWEPT = sorted(set(PUBLIC) - NOT_SWEPT) + [
    "export.iter_message_records",
    "export.export_messages_jsonl",
]


class _Undo(Exception):
    """Raised to roll a call's savepoint back after it was checked."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 40 else text[:30] + f"... ({len(text)} chars)"


def _positions(fn: Callable[..., Any], baseline: dict[str, Any]) -> list[str]:
    """Every argument a caller can name: the parameters, and the baseline's ``**fields``."""
    params = inspect.signature(fn).parameters
    named = [
        p.name
        for p in list(params.values())[1:]
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    return ["session", *named, *(k for k in baseline if k not in params)]


def _sweep(
    s: Any, name: str, world: Any, snapshot: Callable[[Any], Any], values: list[Any] = HOSTILE
) -> list[str]:
    """Every hostile value in every position of ``name``; what went wrong, as text."""
    fn = _function(name)
    problems = []
    before = snapshot(s)  # each call is rolled back after it is checked
    for position in _positions(fn, _call_args(name, world)):
        for value in values:
            kwargs = _call_args(name, world)
            session = s
            if position == "session":
                session = value
            else:
                kwargs[position] = value
            where = f"{name}({position}={_short(value)})"
            try:
                with s.db.atomic():
                    try:
                        _consume(fn(session, **kwargs))
                    except LocalchatError:
                        if snapshot(s) != before:
                            problems.append(f"{where}: refused, but the database changed")
                    except Exception as exc:  # noqa: BLE001 -- what the sweep looks for
                        problems.append(f"{where}: {type(exc).__name__}: {str(exc)[:150]}")
                    raise _Undo
            except _Undo:
                pass
    return problems


@pytest.fixture
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lowest scrypt cost: authenticate is swept hundreds of times."""
    monkeypatch.setattr(_passwords, "SCRYPT_PARAMS", (2, 1, 1))


@pytest.mark.parametrize("name", SWEPT)
def test_hostile_arguments_raise_only_localchat_errors_and_change_nothing(
    name, localchat_session, cheap_passwords, snapshot
):
    world = build_world(localchat_session, password_hash=hash_password("pw"))
    assert _sweep(localchat_session, name, world, snapshot) == []


def test_hostile_arguments_raise_only_localchat_errors_on_postgresql(
    pg_session, monkeypatch, snapshot
):
    monkeypatch.setattr(_passwords, "SCRYPT_PARAMS", (2, 1, 1))
    world = build_world(pg_session, password_hash=hash_password("pw"))
    problems = [
        problem
        for name in SWEPT
        for problem in _sweep(pg_session, name, world, snapshot, HOSTILE_ON_POSTGRESQL)
    ]
    assert problems == []


GETTERS = [name for name in SWEPT if name.startswith("get_")]


@pytest.mark.parametrize("key", ["\ud800", "a\0b"])
@pytest.mark.parametrize("name", GETTERS)
def test_a_key_no_stored_text_can_equal_is_a_validation_error_in_every_getter(
    localchat_session, name, key
):
    """One rule: NUL and lone surrogates are refused, never None here and an error there."""
    fn = _function(name)
    kwargs = _call_args(name, build_world(localchat_session))
    first = list(inspect.signature(fn).parameters)[1]
    kwargs[first] = key
    with pytest.raises(ValidationError, match="NUL|lone surrogate"):
        fn(localchat_session, **kwargs)


#: The counts kept in INTEGER columns (32 bits on PostgreSQL): name -> world -> kwargs.
COUNTS = {
    "record_response.tokens_prompt": ("record_response", "tokens_prompt"),
    "record_response.completion_time_ms": ("record_response", "completion_time_ms"),
    "log_generation.tokens_used": ("log_generation", "tokens_used"),
    "log_generation.generation_time_ms": ("log_generation", "generation_time_ms"),
    "create_model.context_window": ("create_model", "context_window"),
    "update_model.context_window": ("update_model", "context_window"),
}


@pytest.mark.parametrize("where", COUNTS)
def test_counts_are_refused_past_what_every_backend_stores(localchat_session, where):
    """The same bound on SQLite as PostgreSQL's INTEGER column: 2**31 - 1."""
    name, arg = COUNTS[where]
    world = build_world(localchat_session)
    with pytest.raises(ValidationError, match="2147483647"):
        _function(name)(localchat_session, **{**_call_args(name, world), arg: 2**31})
    if name != "record_response":  # one response per message: the refused call left room
        _function(name)(localchat_session, **{**_call_args(name, world), arg: 2**31 - 1})
    else:
        record_response(localchat_session, world.reply.id, "m", **{arg: 2**31 - 1})


@pytest.mark.parametrize("fp", [io.BytesIO(), "out.jsonl", None])
def test_export_needs_a_text_file(localchat_session, fp):
    with pytest.raises(ValidationError, match="fp must be a text file"):
        export.export_messages_jsonl(localchat_session, fp)


@pytest.mark.parametrize("password", ["\ud800", "ok\udfff"])
def test_a_password_that_is_not_unicode_text_is_refused_not_a_codec_error(password):
    with pytest.raises(ValidationError, match="lone surrogate"):
        hash_password(password)
    with pytest.raises(ValidationError, match="lone surrogate"):
        _passwords.verify_password(password, PASSWORD_HASH)
