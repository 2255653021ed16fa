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

* Every conversation has a *current leaf*: the end of the branch on screen.
  ``add_message`` and ``add_sibling`` move it to the new message,
  :func:`switch_branch` to the newest leaf below a chosen version (it is the
  latest message when nothing moved it). ``add_message(..., parent_id=None)``
  attaches the new message under it, so a linear chat is a chain and
  ``get_thread(leaf)`` is the whole chat. The first message of a conversation
  is a root. Pass ``parent_id`` to continue another branch.
* ``list_messages_for_conversation(..., latest=True)`` and
  ``get_thread(..., limit=N)`` give the last N messages of a branch;
  :func:`list_versions` a message's versions and its position ("2 of 3").
* :func:`update_message` changes one message in place (content, metadata,
  ``status``: ``complete``, ``streaming``, ``incomplete``, ``error``).
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

import dataclasses
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
from ..fastsql import columns, fetch_models, statement
from ..models import MESSAGE_STATUSES, ROLES, Conversation, Message, Response, utcnow
from ..operations import operation, own_atomicity_operation, read_operation
from ._append import new_message
from ._base import paginate
from ._bump import CURRENT_LEAF, refresh_preview, tracks_leaf
from ._tree import newest_leaf_below, remove_messages

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
    "update_message",
    "switch_branch",
    "get_current_leaf",
    "Versions",
    "list_versions",
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
# The path up from a message (``{start}``), at most ``{p}`` deep, skipping the ``{p}``
# newest: root first. One recursive query on SQLite and PostgreSQL alike. The depth
# is a BIGINT so the depth and offset parameters are too (asyncpg types each
# parameter from its column: an int4 depth refuses the 2**63 - 1 of "no limit").
_PATH = (
    'WITH RECURSIVE "thread"("id", "parent_id", "depth") AS ('
    'SELECT s."id", s."parent_id", CAST(0 AS BIGINT) FROM "message" s WHERE s."id" = {start} '
    'UNION ALL SELECT up."id", up."parent_id", t."depth" + 1 FROM "message" up '
    'JOIN "thread" t ON up."id" = t."parent_id" WHERE t."depth" + 1 < {p}) '
    'SELECT COLUMNS FROM "message" m JOIN "thread" t ON m."id" = t."id" '
    'WHERE t."depth" >= {p} ORDER BY t."depth" DESC'
).replace("COLUMNS", columns(Message, "m"))
_PATH_FROM_MESSAGE = _PATH.replace("{start}", "{p}")
_CURRENT_BRANCH = _PATH.replace(
    "{start}", "(SELECT " + CURRENT_LEAF + ' FROM "conversation" c WHERE c."id" = {p})'
)
_INT64_MAX = 2**63 - 1


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
    """The conversation's newest message, or None (a new message attaches under the
    current leaf: :func:`get_current_leaf`)."""
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

    ``latest=True`` gives the *current branch* instead (the path from the root
    to the conversation's current leaf, see :func:`switch_branch`), paged from
    its newest end: ``limit=50, latest=True`` is the last 50 messages on screen
    (what a chat window opens on), still oldest first; ``offset`` then skips
    that many of the newest.
    """
    conv_id = _conversation_id(conversation_id)
    if conv_id is None:
        return []
    if latest:
        limit, offset = check_page(limit, offset)
        if sender_type is None:
            return _path(s, _CURRENT_BRANCH, conv_id, limit, offset)
        role = check_choice("sender_type", sender_type, ROLES)
        branch = [m for m in _path(s, _CURRENT_BRANCH, conv_id, None, 0) if m.role == role]
        return branch[max(0, len(branch) - offset - limit) : len(branch) - offset]
    if sender_type is None:  # the hot path: fixed SQL
        limit, offset = check_page(limit, offset)
        db = s.db
        rows = fetch_models(
            Message,
            db.execute_sql(statement(db, _OLDEST_PAGE, message=Message), (conv_id, limit, offset)),
        )
        return rows
    query = Message.select().where(Message.conversation == conv_id)
    query = query.where(Message.role == check_choice("sender_type", sender_type, ROLES))
    return paginate(query.order_by(*_OLDEST_FIRST), limit, offset)


def _path(s: Session, sql: str, start: int, limit: int | None, offset: int) -> list[Message]:
    """The last ``limit`` messages (after skipping ``offset``) of a path up from ``start``."""
    depth = _INT64_MAX if limit is None else min(_INT64_MAX, limit + offset)
    db = s.db
    return fetch_models(Message, db.execute_sql(statement(db, sql), (start, depth, offset)))


@operation
def get_conversation_message_count(s: Session, conversation_id: int | str | Conversation) -> int:
    """How many messages the conversation holds, all branches (0 if unknown)."""
    conv_id = _conversation_id(conversation_id)
    if conv_id is None:
        return 0
    return int(Message.select().where(Message.conversation == conv_id).count())


@operation
def get_thread(s: Session, leaf_id: int | str | Message, limit: int | None = None) -> list[Message]:
    """The path from the root down to ``leaf_id``, root first ([] if no such message).

    ``limit``: only the last ``limit`` messages of it (the ones nearest the
    leaf), still oldest first. One recursive query (SQLite and PostgreSQL).
    """
    mid = _message_id(leaf_id)
    limit, _ = check_page(limit, 0)
    if mid is None:
        return []
    return _path(s, _PATH_FROM_MESSAGE, mid, limit, 0)


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
    remove_messages([row], leaves=tracks_leaf(s))
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


# -- a chat window: status, edits in place, branches and versions -----------------


@operation
def update_message(
    s: Session,
    message_id: int | str | Message,
    *,
    content: str | None = None,
    metadata: Any = None,
    status: str | None = None,
    error: str | None = None,
) -> Message | None:
    """Change this message in place (exactly this one, by id); None if there is no such message.

    ``status`` is one of ``complete``, ``streaming``, ``incomplete`` (stopped or
    interrupted) and ``error``; ``error`` (its text) goes only with
    ``status="error"``, and any other status clears it. The message's and its
    conversation's ``updated_at`` move to now; when the content changes, the
    conversation's preview follows its latest message and the search index
    the new text. None values leave a field as it is.
    """
    fields: dict[str, Any] = {}
    if content is not None:
        fields["content"] = check_text("content", content, allow_empty=True)
    if metadata is not None:
        fields["metadata"] = check_json("metadata", metadata)
    if status is not None:
        fields["status"] = check_choice("status", status, MESSAGE_STATUSES)
        fields["error"] = None
    if error is not None:
        if status != "error":
            raise ValidationError('error text goes with status="error" only.')
        fields["error"] = check_text("error", error, allow_empty=True)
    mid = _message_id(message_id)
    row = Message.get_or_none(Message.id == mid) if mid is not None else None
    if row is None:
        return None
    now = utcnow()
    fields["updated_at"] = now
    Message.update(**fields).where(Message.id == mid).execute()
    refresh_preview(row.conversation_id, touch=now)
    row.__data__.update(fields)
    return row


@operation
def switch_branch(s: Session, message_id: int | str | Message) -> Message:
    """Show the branch through this message: the newest leaf below it becomes the current leaf.

    Returns that leaf (what ``list_messages_for_conversation(..., latest=True)``
    and ``add_message`` without a parent then continue from). NotFound for a
    missing message.
    """
    mid = _message_id(message_id)
    row = (
        Message.select(Message.id, Message.conversation).where(Message.id == mid).first()
        if mid is not None
        else None
    )
    if row is None:
        raise NotFound(f"no message {message_id!r} to switch to.")
    leaf = newest_leaf_below(s.db, row.id)
    moved = Conversation.update(current_leaf_id=leaf)
    moved.where(Conversation.id == row.conversation_id).execute()
    return Message.get_by_id(leaf)


@read_operation
def get_current_leaf(s: Session, conversation_id: int | str | Conversation) -> Message | None:
    """The message at the end of the conversation's current branch, or None when it is empty.

    The one :func:`add_message`, :func:`add_sibling` or :func:`switch_branch`
    last moved it to (the latest message if none did).
    """
    conv_id = _conversation_id(conversation_id)
    if conv_id is None:
        return None
    sql = "SELECT " + CURRENT_LEAF + ' FROM "conversation" c WHERE c."id" = {p}'
    found = s.db.execute_sql(statement(s.db, sql), (conv_id,)).fetchone()
    return None if found is None or found[0] is None else Message.get_by_id(found[0])


@dataclasses.dataclass(frozen=True)
class Versions:
    """A message's versions (it and its siblings: same parent, same role not required),
    oldest first, and where the message stands among them (``position`` counts from 1)."""

    messages: list[Message]
    position: int

    @property
    def total(self) -> int:
        """How many versions there are."""
        return len(self.messages)

    @property
    def label(self) -> str:
        """``"2 of 3"``: what a chat window shows between its arrows."""
        return f"{self.position} of {self.total}"


@read_operation
def list_versions(s: Session, message_id: int | str | Message) -> Versions | None:
    """The versions of a message (edits and regenerations), the first message of a
    conversation included, with this one's position; None if there is no such message."""
    mid = _message_id(message_id)
    row = (
        Message.select(Message.id, Message.conversation, Message.parent)
        .where(Message.id == mid)
        .first()
        if mid is not None
        else None
    )
    if row is None:
        return None
    parent = row.parent_id
    if parent is None:  # the first messages of the conversation
        where = (Message.conversation == row.conversation_id) & Message.parent.is_null()
    else:  # a parent's children are in its conversation: read them by parent (its index)
        where = Message.parent == parent
    query = Message.select().where(where)
    siblings = list(query.order_by(*_OLDEST_FIRST))
    position = next(i for i, m in enumerate(siblings, 1) if m.id == row.id)
    return Versions(siblings, position)
