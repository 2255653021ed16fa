"""Chat exchanges: a user message and its assistant reply, seen as one record.

    from localchat import local_session
    from localchat.repository import add_chat_exchange, create_conversation, list_chat_exchanges

    with local_session() as s:
        chat = create_conversation(s, title="Support")
        exch = add_chat_exchange(s, chat.id, user_message="Hello", rag_prompt="Prompt",
                                 assistant_message="Hi!", html_response="<p>Hi!</p>",
                                 context_used=[{"info": "test"}])
        [e.assistant_message for e in list_chat_exchanges(s, chat.id)]   # ['Hi!']

An exchange is a *view*, not a table: ``user_message`` is a ``user`` message
and ``assistant_message`` its newest ``assistant`` child; ``rag_prompt``,
``html_response`` and ``context_used`` are kept in that reply's metadata under
those keys. The exchange ``id`` is the user message's id, so the same rows are
reachable through the message functions (``get_thread``, ``add_sibling``...).

The reply exists once an ``assistant_message`` is given (when the exchange is
added or later through :func:`update_chat_exchange`); the three reply fields
need it, so giving them without one is a ValidationError. Updating changes the
messages in place (no new branch); None leaves a field as it is.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from ..checks import check_json, check_text, id_of
from ..database import Session
from ..errors import ValidationError
from ..models import Conversation, Message, utcnow
from ..operations import operation
from ._bump import refresh_preview, tracks_leaf
from ._tree import remove_messages
from .messages import add_message

__all__ = [
    "ChatExchange",
    "add_chat_exchange",
    "get_chat_exchange",
    "list_chat_exchanges",
    "update_chat_exchange",
    "delete_chat_exchange",
]

_REPLY_FIELDS = ("rag_prompt", "html_response", "context_used")
_FIELDS = ("user_message", "assistant_message", *_REPLY_FIELDS)


@dataclass(frozen=True)
class ChatExchange:
    """A read-only view of one exchange; ``id`` is the user message's id."""

    id: int
    chat_session_id: int
    user_message: str
    rag_prompt: str | None
    assistant_message: str | None
    html_response: str | None
    context_used: Any
    created_at: _dt.datetime
    reply_id: int | None = None

    @classmethod
    def of(cls, question: Message, reply: Message | None) -> ChatExchange:
        extra = (reply.metadata if reply is not None else None) or {}
        return cls(
            id=question.id,
            chat_session_id=question.conversation_id,
            user_message=question.content,
            rag_prompt=extra.get("rag_prompt"),
            assistant_message=None if reply is None else reply.content,
            html_response=extra.get("html_response"),
            context_used=extra.get("context_used"),
            created_at=question.created_at,
            reply_id=None if reply is None else reply.id,
        )


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    """The exchange fields given (None left out), checked."""
    unknown = sorted(set(fields) - set(_FIELDS))
    if unknown:
        raise ValidationError(
            f"a chat exchange has no field {', '.join(unknown)}; it has {', '.join(_FIELDS)}."
        )
    given = {k: v for k, v in fields.items() if v is not None}
    for name in ("user_message", "assistant_message", "rag_prompt", "html_response"):
        if name in given:
            check_text(name, given[name], allow_empty=True)
    if "context_used" in given:
        check_json("context_used", given["context_used"])
    return given


def _reply_metadata(given: dict[str, Any], current: Any = None) -> dict[str, Any] | None:
    merged = dict(current or {})
    merged.update({k: given[k] for k in _REPLY_FIELDS if k in given})
    return merged or None


def _question(exchange_id: Any) -> Message | None:
    mid = id_of(Message, exchange_id, "exchange_id")
    if mid is None:
        return None
    return Message.get_or_none((Message.id == mid) & (Message.role == "user"))


def _replies(question_ids: list[int]) -> dict[int | None, Message]:
    """The newest assistant reply of each question, in one query."""
    query = (
        Message.select()
        .where(Message.parent.in_(question_ids) & (Message.role == "assistant"))
        .order_by(Message.created_at, Message.id)
    )
    return {reply.parent_id: reply for reply in query}  # newest wins


@operation
def add_chat_exchange(
    s: Session,
    chat_session_id: int | str | Conversation,
    user_message: str,
    rag_prompt: str | None = None,
    assistant_message: str | None = None,
    html_response: str | None = None,
    context_used: Any = None,
) -> ChatExchange:
    """Append a user message and (when given) its assistant reply; returns the view."""
    given = _checked(
        {
            "user_message": user_message,
            "rag_prompt": rag_prompt,
            "assistant_message": assistant_message,
            "html_response": html_response,
            "context_used": context_used,
        }
    )
    if "user_message" not in given:
        raise ValidationError("user_message is required.")
    if "assistant_message" not in given and any(k in given for k in _REPLY_FIELDS):
        raise ValidationError(
            "rag_prompt, html_response and context_used are kept with the assistant reply; "
            "pass assistant_message too, or add them later with update_chat_exchange."
        )
    question = add_message(s, chat_session_id, "user", user_message)
    reply = None
    if assistant_message is not None:
        reply = add_message(
            s,
            question.conversation_id,
            "assistant",
            assistant_message,
            _reply_metadata(given),
            parent_id=question.id,
        )
    return ChatExchange.of(question, reply)


@operation
def get_chat_exchange(s: Session, exchange_id: int | str | Message) -> ChatExchange | None:
    """The exchange whose user message has this id (or uuid), or None."""
    question = _question(exchange_id)
    if question is None:
        return None
    return ChatExchange.of(question, _replies([question.id]).get(question.id))


@operation
def list_chat_exchanges(
    s: Session, chat_session_id: int | str | Conversation
) -> list[ChatExchange]:
    """Every exchange of a conversation, oldest first, in two queries ([] if unknown)."""
    conv_id = id_of(Conversation, chat_session_id, "chat_session_id")
    if conv_id is None:
        return []
    query = (
        Message.select()
        .where((Message.conversation == conv_id) & (Message.role == "user"))
        .order_by(Message.created_at, Message.id)
    )
    questions = list(query)
    replies = _replies([q.id for q in questions]) if questions else {}
    return [ChatExchange.of(q, replies.get(q.id)) for q in questions]


@operation
def update_chat_exchange(
    s: Session, exchange_id: int | str | Message, **fields: Any
) -> ChatExchange | None:
    """Change the fields given, in place; None if there is no such exchange."""
    given = _checked(fields)
    question = _question(exchange_id)
    if question is None:
        return None
    reply = _replies([question.id]).get(question.id)
    if (
        reply is None
        and "assistant_message" not in given
        and any(k in given for k in _REPLY_FIELDS)
    ):
        raise ValidationError(
            f"exchange {exchange_id!r} has no assistant reply to keep "
            f"{', '.join(k for k in _REPLY_FIELDS if k in given)}; pass assistant_message too."
        )
    now = utcnow()
    if "user_message" in given:
        question.content = given["user_message"]
        Message.update(content=question.content, updated_at=now).where(
            Message.id == question.id
        ).execute()
    if reply is None and "assistant_message" in given:
        reply = add_message(
            s,
            question.conversation_id,
            "assistant",
            given["assistant_message"],
            _reply_metadata(given),
            parent_id=question.id,
        )
    elif reply is not None and given.keys() - {"user_message"}:
        reply.content = given.get("assistant_message", reply.content)
        reply.metadata = _reply_metadata(given, reply.metadata)
        Message.update(content=reply.content, metadata=reply.metadata, updated_at=now).where(
            Message.id == reply.id
        ).execute()
    if given.keys() & {"user_message", "assistant_message"}:
        refresh_preview(question.conversation_id)
    return ChatExchange.of(question, reply)


@operation
def delete_chat_exchange(s: Session, exchange_id: int | str | Message) -> bool:
    """Delete the user message and its assistant replies; later messages are kept."""
    question = _question(exchange_id)
    if question is None:
        return False
    replies = Message.select(Message.id, Message.parent, Message.conversation).where(
        (Message.parent == question.id) & (Message.role == "assistant")
    )
    remove_messages([question, *replies], leaves=tracks_leaf(s))
    return True
