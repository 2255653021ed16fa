"""Messages as a tree (edits and regenerations keep every version), and responses.

    from localchat import local_session
    from localchat.repository import (
        add_message, add_sibling, create_conversation, get_thread, record_response)

    with local_session() as s:
        conv = create_conversation(s, title="Arithmetic")
        question = add_message(s, conv.id, "user", "What is 2+2?")
        first = add_message(s, conv.id, "assistant", "4", model="llama3")  # reply to question
        second = add_sibling(s, first.id, "Four.")                          # a regeneration
        [m.content for m in get_thread(s, second.id)]   # ['What is 2+2?', 'Four.']
        record_response(s, second.id, "llama3", tokens_prompt=12, tokens_completion=3)

Tree rules:

* ``add_message(..., parent_id=None)`` attaches the new message under the
  conversation's latest message (greatest ``created_at``, then ``id``), so a
  linear chat is a chain and ``get_thread(latest)`` is the whole chat. The first
  message of a conversation is a root. Pass ``parent_id`` to continue another
  branch (a chat UI passes the leaf on screen).
* Editing or regenerating is :func:`add_sibling`: a new message with the same
  role and parent as the one it replaces, which stays in place.
* :func:`delete_message` re-attaches the deleted message's children to its
  parent, so deleting one message never loses the ones after it.

Every new message moves its conversation's ``updated_at`` and ``last_message``
preview atomically with its INSERT (on SQLite migration 0004's trigger does it
inside the INSERT: no savepoint needed; see ``_append.py``). Roles are
``user``, ``assistant``, ``system`` and ``tool`` (strings or
:class:`MessageSenderType`). A conversation or message is named by its integer
id, its uuid, or the row itself.
"""

from __future__ import annotations

import enum
from typing import Any

import peewee

from ..checks import (
    check_choice,
    check_json,
    check_page,
    check_text,
    count_or_none,
    get_row,
    id_of,
    text_or_none,
)
from ..database import Session
from ..errors import Conflict, NotFound, ValidationError
from ..fastsql import fetch_models, statement
from ..models import ROLES, Conversation, Message, Response
from ..operations import operation, own_atomicity_operation, read_operation
from ._append import new_message
from ._base import paginate
from ._tree import remove_messages

__all__ = [
    "MessageSenderType",
    "add_message",
    "add_sibling",
    "get_message_by_id",
    "get_latest_message",
    "list_messages_for_conversation",
    "get_conversation_message_count",
    "get_thread",
    "list_children",
    "delete_message",
    "record_response",
    "get_response_for_message",
]


class MessageSenderType(str, enum.Enum):
    """The role of a message's author."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


_OLDEST_FIRST = (Message.created_at, Message.id)
_NEWEST_FIRST = (Message.created_at.desc(), Message.id.desc())

# The statements of the hot paths, as fixed text (see _fast.py).
_CONVERSATION_OF = 'SELECT "conversation_id" FROM "message" WHERE "id" = {p}'
_OLDEST_PAGE = (
    'SELECT {message} FROM "message" WHERE "conversation_id" = {p} '
    'ORDER BY "created_at", "id" LIMIT {p} OFFSET {p}'
)
_LATEST_PAGE = (
    'SELECT {message} FROM "message" WHERE "conversation_id" = {p} '
    'ORDER BY "created_at" DESC, "id" DESC LIMIT {p} OFFSET {p}'
)


def _conversation_id(key: Any) -> int | None:
    return id_of(Conversation, key, "conversation_id")


def _message_id(key: Any) -> int | None:
    return id_of(Message, key, "message_id")


def _nothing_or(condition: Any, key: int | None) -> Any:
    """``condition`` when ``key`` exists; else a condition that matches no row."""
    return Message.id.in_([]) if key is None else condition


def _checked(content: Any, role_metadata: Any, model: Any) -> tuple[str, Any, str | None]:
    return (
        check_text("content", content, allow_empty=True),
        check_json("role_metadata", role_metadata),
        text_or_none("model", model, 255),
    )


@own_atomicity_operation
def add_message(
    s: Session,
    conversation_id: int | str | Conversation,
    sender_type: str | MessageSenderType,
    content: str,
    role_metadata: Any = None,
    *,
    parent_id: int | str | Message | None = None,
    model: str | None = None,
) -> Message:
    """Append a message (under the latest one unless ``parent_id`` is given).

    NotFound for a missing conversation or parent; ValidationError for a bad
    role, content, metadata, or a parent in another conversation.
    """
    role = check_choice("sender_type", sender_type, ROLES)
    content, metadata, model = _checked(content, role_metadata, model)
    conv_id = _conversation_id(conversation_id)
    if conv_id is None:
        raise NotFound(f"no conversation {conversation_id!r}; create it first.")
    if parent_id is None:
        return new_message(
            s, conversation_id, conv_id, None, role, content, metadata, model, under_latest=True
        )
    parent = _message_id(parent_id)
    if parent is not None:
        found = s.db.execute_sql(statement(s.db, _CONVERSATION_OF), (parent,)).fetchone()
        parent_conv = found[0] if found else None
    else:
        parent_conv = None
    if parent_conv is None:
        raise NotFound(f"no message {parent_id!r} to reply to.")
    if parent_conv != conv_id:
        raise ValidationError(
            f"parent message {parent_id!r} belongs to conversation {parent_conv}, "
            f"not {conversation_id!r}."
        )
    return new_message(s, conversation_id, conv_id, parent, role, content, metadata, model)


@own_atomicity_operation
def add_sibling(
    s: Session,
    message_id: int | str | Message,
    content: str,
    role_metadata: Any = None,
    *,
    model: str | None = None,
) -> Message:
    """Edit or regenerate: a new message with the same role and parent; the old one stays."""
    content, metadata, model = _checked(content, role_metadata, model)
    mid = _message_id(message_id)
    old = (
        Message.select(Message.conversation, Message.parent, Message.role)
        .where(Message.id == mid)
        .first()
    )
    if old is None:
        raise NotFound(f"no message {message_id!r} to edit or regenerate.")
    conv_id = old.conversation_id
    return new_message(s, conv_id, conv_id, old.parent_id, old.role, content, metadata, model)


@operation
def get_message_by_id(s: Session, message_id: int | str) -> Message | None:
    """The message with this id (a uuid also works), or None."""
    return get_row(Message, message_id)


@operation
def get_latest_message(s: Session, conversation_id: int | str | Conversation) -> Message | None:
    """The conversation's newest message (where a new message attaches), or None."""
    conv_id = _conversation_id(conversation_id)
    query = Message.select().where(_nothing_or(Message.conversation == conv_id, conv_id))
    return query.order_by(*_NEWEST_FIRST).first()


@read_operation
def list_messages_for_conversation(
    s: Session,
    conversation_id: int | str | Conversation,
    limit: int | None = 100,
    offset: int = 0,
    sender_type: str | MessageSenderType | None = None,
    *,
    latest: bool = False,
) -> list[Message]:
    """Every message of every branch, oldest first ([] for an unknown conversation).

    ``latest=True`` pages from the newest end instead: ``limit=50, latest=True``
    is the last 50 messages (what a chat window opens on), still oldest first;
    ``offset`` then skips that many of the newest.
    """
    conv_id = _conversation_id(conversation_id)
    if sender_type is None and conv_id is not None:  # the hot path: fixed SQL
        limit, offset = check_page(limit, offset)
        db = s.db
        sql = _LATEST_PAGE if latest else _OLDEST_PAGE
        rows = fetch_models(
            Message, db.execute_sql(statement(db, sql, message=Message), (conv_id, limit, offset))
        )
        if latest:
            rows.reverse()
        return rows
    query = Message.select().where(_nothing_or(Message.conversation == conv_id, conv_id))
    if sender_type is not None:
        query = query.where(Message.role == check_choice("sender_type", sender_type, ROLES))
    if latest:
        return paginate(query.order_by(*_NEWEST_FIRST), limit, offset)[::-1]
    return paginate(query.order_by(*_OLDEST_FIRST), limit, offset)


@operation
def get_conversation_message_count(s: Session, conversation_id: int | str | Conversation) -> int:
    """How many messages the conversation holds, all branches (0 if unknown)."""
    conv_id = _conversation_id(conversation_id)
    if conv_id is None:
        return 0
    return int(Message.select().where(Message.conversation == conv_id).count())


@operation
def get_thread(s: Session, leaf_id: int | str | Message) -> list[Message]:
    """The path from the root down to ``leaf_id``, root first ([] if no such message).

    One recursive query (SQLite and PostgreSQL).
    """
    mid = _message_id(leaf_id)
    if mid is None:
        return []
    up = Message.alias("up")
    base = (
        Message.select(Message.id, Message.parent, peewee.SQL("0").alias("depth"))
        .where(Message.id == mid)
        .cte("thread", recursive=True, columns=("id", "parent_id", "depth"))
    )
    step = up.select(up.id, up.parent, base.c.depth + 1).join(base, on=(up.id == base.c.parent_id))
    thread = base.union_all(step)
    query = (
        Message.select()
        .join(thread, on=(Message.id == thread.c.id))
        .order_by(thread.c.depth.desc())
        .with_cte(thread)
    )
    return list(query)


@operation
def list_children(s: Session, message_id: int | str | Message) -> list[Message]:
    """The direct replies to a message (its edits' and regenerations' siblings), oldest first."""
    mid = _message_id(message_id)
    query = Message.select().where(_nothing_or(Message.parent == mid, mid))
    return list(query.order_by(*_OLDEST_FIRST))


@operation
def delete_message(s: Session, message_id: int | str | Message) -> bool:
    """Delete one message (and its response); its children move up to its parent."""
    mid = _message_id(message_id)
    fields = (Message.id, Message.parent, Message.conversation)
    row = Message.select(*fields).where(Message.id == mid).first() if mid is not None else None
    if row is None:
        return False
    remove_messages([row])
    return True


@operation
def record_response(
    s: Session,
    message_id: int | str | Message,
    model_used: str,
    tokens_prompt: int | None = None,
    tokens_completion: int | None = None,
    tokens_total: int | None = None,
    completion_time_ms: int | None = None,
    *,
    options: Any = None,
    usage_details: Any = None,
) -> Response:
    """Usage and timing of the call that produced an assistant message (one per message).

    ``tokens_total`` defaults to prompt + completion when both are known.
    NotFound for a missing message, ValidationError for a non-assistant
    message or a negative count, Conflict if the message already has one.
    """
    fields = {
        "model_used": check_text("model_used", model_used, max_length=255),
        "tokens_prompt": count_or_none("tokens_prompt", tokens_prompt),
        "tokens_completion": count_or_none("tokens_completion", tokens_completion),
        "tokens_total": count_or_none("tokens_total", tokens_total),
        "completion_time_ms": count_or_none("completion_time_ms", completion_time_ms),
        "options": check_json("options", options),
        "usage_details": check_json("usage_details", usage_details),
    }
    if tokens_total is None and tokens_prompt is not None and tokens_completion is not None:
        fields["tokens_total"] = count_or_none("tokens_total", tokens_prompt + tokens_completion)
    mid = _message_id(message_id)
    role = (
        Message.select(Message.role).where(Message.id == mid).scalar() if mid is not None else None
    )
    if role is None:
        raise NotFound(f"no message {message_id!r} to record a response for.")
    if role != "assistant":
        raise ValidationError(
            f"message {message_id!r} is a {role} message; responses belong to assistant messages."
        )
    try:
        return Response.create(message=mid, **fields)
    except peewee.IntegrityError as exc:
        raise Conflict(f"message {message_id!r} already has a response.") from exc


@operation
def get_response_for_message(s: Session, message_id: int | str | Message) -> Response | None:
    """The response recorded for an assistant message, or None."""
    mid = _message_id(message_id)
    return None if mid is None else Response.get_or_none(Response.message == mid)
