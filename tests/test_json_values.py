"""One rule for JSON values, wherever a function stores one: what PostgreSQL's JSONB
and SQLite both store and read back equal (no NUL, no lone surrogate, string keys,
finite numbers, dict / list / str / number / bool / None, at most 100 levels deep)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from localchat import InvocationParams
from localchat.errors import ValidationError
from localchat.repository import (
    add_chat_exchange,
    add_message,
    create_conversation,
    create_model,
    create_prompt,
    create_service,
    import_messages,
    log_generation,
    record_response,
    update_prompt,
    upsert_knowledge_chunk,
)


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


BAD = {
    "NUL in a value": ({"k": "a\0b"}, "NUL"),
    "NUL in a key": ({"a\0b": 1}, "NUL"),
    "lone surrogate in a value": ({"k": ["\ud800"]}, "lone surrogate"),
    "lone surrogate in a key": ({"\udfff": 1}, "lone surrogate"),
    "a key that is not a string": ({1: "x"}, "keys must be strings"),
    "NaN": ({"k": float("nan")}, "finite"),
    "infinity": ({"k": float("inf")}, "finite"),
    "a set": ({"k": {1, 2}}, "set"),
    "an object": ({"k": object()}, "object"),
    "bytes": ({"k": b"x"}, "bytes"),
    "101 levels": ({"k": _nested(100)}, "deeper than 100"),
}
GOOD = {"k": [1, 2.5, "é ✓ 😀", None, True, {"n": _nested(90)}], "": ""}


def _world(s: Any) -> dict[str, Any]:
    conv = create_conversation(s, title="t")
    reply = add_message(s, conv.id, "assistant", "a")
    service = create_service(s, "svc", "openai")
    create_model(s, service.id, "gpt")
    create_prompt(s, "p1", "Greeting", {"text": "Hello"})
    return {"conv": conv, "reply": reply}


def _invocation(s: Any, w: dict[str, Any], value: Any) -> Any:
    messages = [{"role": "user", "content": "hi", "extra": value}]
    return InvocationParams("svc", "gpt", messages).validate(s)


#: Every function that stores (or sends) a JSON value given by the caller.
STORES_JSON: dict[str, Callable[[Any, dict[str, Any], Any], Any]] = {
    "add_message.role_metadata": lambda s, w, v: add_message(s, w["conv"].id, "user", "x", v),
    "record_response.options": lambda s, w, v: record_response(s, w["reply"].id, "m", options=v),
    "record_response.usage_details": lambda s, w, v: record_response(
        s, w["reply"].id, "m", usage_details=v
    ),
    "add_chat_exchange.context_used": lambda s, w, v: add_chat_exchange(
        s, w["conv"].id, "q", assistant_message="a", context_used=v
    ),
    "upsert_knowledge_chunk.chunk_metadata": lambda s, w, v: upsert_knowledge_chunk(
        s, "docs", "text", chunk_metadata=v
    ),
    "import_messages.metadata": lambda s, w, v: import_messages(
        s, [{"conversation_id": w["conv"].id, "role": "user", "content": "x", "metadata": v}]
    ),
    "create_prompt.content": lambda s, w, v: create_prompt(s, "p2", "n", v),
    "update_prompt.content": lambda s, w, v: update_prompt(s, "p1", content=v),
    "log_generation.input_data": lambda s, w, v: log_generation(s, "u", "d", v, {}),
    "log_generation.generated_text": lambda s, w, v: log_generation(s, "u", "d", {}, v),
    "InvocationParams.messages": _invocation,
}


@pytest.mark.parametrize("where", STORES_JSON)
@pytest.mark.parametrize("bad", BAD)
def test_every_json_value_follows_one_rule(localchat_session, where, bad):
    value, message = BAD[bad]
    world = _world(localchat_session)
    with pytest.raises(ValidationError, match=message):
        STORES_JSON[where](localchat_session, world, value)


@pytest.mark.parametrize("where", STORES_JSON)
def test_every_json_value_accepts_the_same_values(localchat_session, where):
    STORES_JSON[where](localchat_session, _world(localchat_session), GOOD)


def test_what_one_json_check_accepts_postgresql_stores_and_reads_back(pg_session):
    world = _world(pg_session)
    for store in STORES_JSON.values():
        with pg_session.savepoint() as txn:
            store(pg_session, world, GOOD)
            txn.rollback()
        for value, message in BAD.values():  # each refused before the driver sees it
            with pytest.raises(ValidationError, match=message):
                store(pg_session, world, value)
    msg = add_message(pg_session, world["conv"].id, "user", "x", GOOD)
    assert msg.metadata == GOOD
