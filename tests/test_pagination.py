"""One page rule for every listing: any positive ``limit`` (None, or one past 64 bits,
meaning all), any ``offset`` of 0 or more (one past 64 bits: an empty page), on
SQLite and PostgreSQL alike; anything else is a ValidationError."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from localchat.errors import ValidationError
from localchat.repository import (
    add_message,
    create_conversation,
    create_model,
    create_prompt,
    create_service,
    create_user,
    list_all_conversations,
    list_all_knowledge_chunks,
    list_audit_logs_between,
    list_audit_logs_for_user,
    list_conversations_for_user,
    list_knowledge_chunks_by_source,
    list_messages_for_conversation,
    list_models,
    list_prompts,
    list_services,
    list_users,
    log_generation,
    upsert_knowledge_chunk,
)

ROWS = 3


def _world(s: Any) -> dict[str, Any]:
    user = create_user(s, "ada@example.org")
    conv = None
    for i in range(ROWS):
        conv = create_conversation(s, user.id, title=str(i))
        create_prompt(s, f"p{i}", "n", {"t": "x"})
        create_service(s, f"svc{i}", "openai")
        upsert_knowledge_chunk(s, "docs", f"text {i}")
        log_generation(s, "u1", "doc", {}, {})
    assert conv is not None
    for i in range(ROWS):
        add_message(s, conv.id, "user", f"m{i}")
        create_model(s, "svc0", f"model{i}")
    create_user(s, "bob@example.org")
    create_user(s, "cy@example.org")
    return {"user": user, "conv": conv}


#: Every listing, with the arguments that select exactly ROWS rows.
LISTINGS: dict[str, tuple[Callable[..., list[Any]], Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "list_users": (list_users, lambda w: {}),
    "list_conversations_for_user(id)": (
        list_conversations_for_user,
        lambda w: {"user_id": w["user"].id},
    ),
    "list_conversations_for_user(email)": (
        list_conversations_for_user,
        lambda w: {"user_email": "ada@example.org", "status": "active"},
    ),
    "list_all_conversations": (list_all_conversations, lambda w: {}),
    "list_messages_for_conversation": (
        list_messages_for_conversation,
        lambda w: {"conversation_id": w["conv"].id},
    ),
    "list_messages_for_conversation(latest)": (
        list_messages_for_conversation,
        lambda w: {"conversation_id": w["conv"].id, "latest": True},
    ),
    "list_messages_for_conversation(role)": (
        list_messages_for_conversation,
        lambda w: {"conversation_id": w["conv"].id, "sender_type": "user"},
    ),
    "list_prompts": (list_prompts, lambda w: {}),
    "list_services": (list_services, lambda w: {}),
    "list_models": (list_models, lambda w: {"service_id": "svc0"}),
    "list_knowledge_chunks_by_source": (
        list_knowledge_chunks_by_source,
        lambda w: {"source": "docs"},
    ),
    "list_all_knowledge_chunks": (list_all_knowledge_chunks, lambda w: {}),
    "list_audit_logs_for_user": (list_audit_logs_for_user, lambda w: {"user_id": "u1"}),
    "list_audit_logs_between": (
        list_audit_logs_between,
        lambda w: {"since": dt.datetime(2000, 1, 1)},
    ),
}

ALL_ROWS = [20_000, 10_001, 2**63 - 1, 2**63, 2**64, 2**70, None]
NO_ROWS = [ROWS, 2**63 - 1, 2**63, 2**64, 2**70]
BAD_PAGES = [
    ({"limit": 0}, "limit must be a positive integer or None"),
    ({"limit": -1}, "limit must be a positive integer or None"),
    ({"limit": -(2**70)}, "limit must be a positive integer or None"),
    ({"limit": "10"}, "limit must be a positive integer or None"),
    ({"limit": 1.5}, "limit must be a positive integer or None"),
    ({"limit": float("nan")}, "limit must be a positive integer or None"),
    ({"limit": True}, "limit must be a positive integer or None"),
    ({"offset": -1}, "offset must be an integer of 0 or more"),
    ({"offset": -(2**70)}, "offset must be an integer of 0 or more"),
    ({"offset": None}, "offset must be an integer of 0 or more"),
    ({"offset": "0"}, "offset must be an integer of 0 or more"),
    ({"offset": 0.0}, "offset must be an integer of 0 or more"),
]


def _check_listing(s: Any, name: str) -> None:
    fn, args = LISTINGS[name]
    kwargs = args(_world(s))
    everything = fn(s, **kwargs)
    assert len(everything) == ROWS
    # latest=True pages from the newest end: an offset skips the newest rows
    skip_one = everything[:-1] if kwargs.get("latest") else everything[1:]
    for limit in ALL_ROWS:
        assert fn(s, **kwargs, limit=limit) == everything, limit
        assert fn(s, **kwargs, limit=limit, offset=1) == skip_one, limit
    for offset in NO_ROWS:
        assert fn(s, **kwargs, offset=offset) == [], offset
        assert fn(s, **kwargs, limit=2**70, offset=offset) == [], offset
        assert fn(s, **kwargs, limit=None, offset=offset) == [], offset
    assert fn(s, **kwargs, limit=1, offset=1) == [
        everything[-2] if kwargs.get("latest") else everything[1]
    ]
    for bad, message in BAD_PAGES:
        with pytest.raises(ValidationError, match=message):
            fn(s, **kwargs, **bad)


@pytest.mark.parametrize("name", LISTINGS)
def test_any_positive_limit_and_any_offset_page_every_listing(localchat_session, name):
    _check_listing(localchat_session, name)


def test_every_listing_pages_the_same_way_on_postgresql(pg_session):
    for name in LISTINGS:
        with pg_session.savepoint() as txn:
            _check_listing(pg_session, name)
            txn.rollback()


def test_the_default_page_is_still_100_rows(localchat_session):
    s = localchat_session
    for i in range(101):
        create_prompt(s, f"k{i:03}", "n", {"t": "x"})
    assert len(list_prompts(s)) == 100
    assert len(list_prompts(s, limit=None)) == 101
    assert len(list_prompts(s, limit=10**6)) == 101
