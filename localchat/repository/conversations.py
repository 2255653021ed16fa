"""Conversations: create, find, list, rename, archive and delete chats.

    from localchat import local_session
    from localchat.repository import (
        archive_conversation, create_conversation, list_all_conversations)

    with local_session() as s:
        conv = create_conversation(s, title="Trip ideas", default_model="llama3")
        archive_conversation(s, conv.id)
        [c.title for c in list_all_conversations(s, status="archived")]  # ['Trip ideas']

A conversation is named by its integer ``id`` or the ``Conversation`` itself,
or by a string: its *thread id*, wherever a function takes ``conversation_id``
(here, in messages, exchanges, documents and search alike). An app's own thread
id is kept in ``external_id``; a string names the conversation whose
``external_id`` it is, else the one whose ``uuid`` it is, and never a row id:

    get_or_create_conversation(s, "thread-5")
    update_conversation(s, "thread-5", title="Billing")   # the thread, not row 5
    delete_conversation(s, "thread-5")                    # True; again: False

Owners are given as ``user_id`` (id, uuid or ``User``) or ``user_email``.

``last_message`` is a preview: text longer than 200 characters is cut to 199
and an ellipsis (the rule of every new message, see ``_bump.py``). The source
documents' chat-session names (``create_chat_session``, ``get_chat_session``,
``update_chat_session``, ``delete_chat_session``) are the same functions under
a second name: aliases, importable from here and from :mod:`localchat.compat`,
not in ``__all__``.
"""

from __future__ import annotations

import json
import uuid as _uuid
from typing import Any

import peewee

from ..checks import (
    check_bool,
    check_choice,
    check_json,
    check_page,
    check_storable,
    check_text,
    get_row,
    id_of,
    string_keys,
    text_or_none,
    uuid_or_none,
)
from ..database import Session
from ..errors import Conflict, NotFound, ValidationError
from ..fastsql import fetch_models, statement
from ..models import CONVERSATION_STATUSES, Conversation, User, utcnow
from ..operations import operation, read_operation
from ._base import paginate, update_row
from ._bump import preview
from .documents import release_owned_files

__all__ = [
    "create_conversation",
    "get_conversation_by_id",
    "get_conversation_by_uuid",
    "get_conversation_by_thread_id",
    "get_or_create_conversation",
    "list_conversations_for_user",
    "list_all_conversations",
    "count_conversations_for_user",
    "update_conversation",
    "archive_conversation",
    "delete_conversation",
]


def _by_thread(thread_id: str) -> Conversation | None:
    """The conversation a string names: the one whose ``external_id`` it is (an app's
    thread id), else the one whose uuid it is; None if neither.

    The one rule for strings naming a conversation, wherever a function takes one:
    an int is a row id, a str is a thread id, so a thread id "5" is never row 5.
    """
    check_text("thread_id", thread_id, max_length=255)
    conv = Conversation.get_or_none(Conversation.external_id == thread_id)
    if conv is None:
        uid = uuid_or_none(thread_id)
        if uid is not None:
            conv = Conversation.get_or_none(Conversation.uuid == uid)
    return conv


string_keys(Conversation, _by_thread)  # get_row(Conversation, "...") follows the same rule


def _fields(
    title: Any = None, status: Any = None, default_model: Any = None, last_message: Any = None
) -> dict[str, Any]:
    """The conversation columns given, checked; None values are left out."""
    fields = {
        "title": text_or_none("title", title, 500),
        "status": None if status is None else check_choice("status", status, CONVERSATION_STATUSES),
        "default_model": text_or_none("default_model", default_model, 255),
        "last_message": text_or_none("last_message", last_message),
    }
    if fields["last_message"] is not None:
        fields["last_message"] = preview(fields["last_message"])
    return {k: v for k, v in fields.items() if v is not None}


def _sidebar(pinned: Any, tags: Any, metadata: Any) -> dict[str, Any]:
    """The sidebar columns given (pinned, tags, metadata), checked; None values are left out."""
    fields: dict[str, Any] = {}
    if pinned is not None:
        fields["pinned"] = check_bool("pinned", pinned)
    if tags is not None:
        fields["tags"] = _tags(tags)
    if metadata is not None:
        fields["metadata"] = check_json("metadata", metadata)
    return fields


def _tags(tags: Any) -> list[str]:
    """Free-form tags: a list of non-empty strings (duplicates dropped, order kept)."""
    if isinstance(tags, str) or not isinstance(tags, (list, tuple)):
        raise ValidationError(f"tags must be a list of strings, got {tags!r}.")
    kept: list[str] = []
    for tag in tags:
        text = check_text("tag", tag, max_length=100)
        if not text:
            raise ValidationError("a tag may not be empty.")
        if text not in kept:
            kept.append(text)
    return kept


def _filtered(
    db: peewee.Database,
    query: peewee.ModelSelect[Conversation],
    pinned: Any,
    tag: Any,
    pinned_first: Any,
    title_contains: Any = None,
) -> peewee.ModelSelect[Conversation]:
    """Listing filters: pinned or not, carrying a tag, title text; pinned ones first when asked."""
    if title_contains is not None:  # LIKE / ILIKE, with % and _ taken literally
        text = check_text("title_contains", title_contains, max_length=500)
        query = query.where(Conversation.title.contains(text))
    if pinned is not None:
        query = query.where(Conversation.pinned == check_bool("pinned", pinned))
    if tag is not None:
        tag = check_text("tag", tag, max_length=100)
        if isinstance(db, peewee.SqliteDatabase):
            has = peewee.SQL(
                'EXISTS (SELECT 1 FROM json_each("t1"."tags") WHERE json_each.value = ?)', (tag,)
            )
        else:
            has = peewee.SQL('"t1"."tags" @> %s::jsonb', (json.dumps([tag]),))
        query = query.where(Conversation.tags.is_null(False) & has)
    order = list(_NEWEST_FIRST)
    if check_bool("pinned_first", pinned_first):
        order.insert(0, Conversation.pinned.desc())
    return query.order_by(*order)


def _user_id(user_id: Any, user_email: Any) -> int | None:
    """The owner's id from ``user_id`` or ``user_email``; None when there is no such user."""
    if user_id is not None and user_email is not None:
        raise ValidationError("pass user_id or user_email, not both.")
    if user_email is not None:
        email = check_text("user_email", user_email, max_length=254).strip().lower()
        return User.select(User.id).where(User.email == email).scalar()
    if user_id is None:
        raise ValidationError("user_id or user_email is required.")
    return id_of(User, user_id, "user_id")


def _existing_owner(user_id: Any, user_email: Any) -> int | None:
    """The owner's id for a new conversation (None: anonymous); NotFound if missing."""
    if user_id is None and user_email is None:
        return None
    uid = _user_id(user_id, user_email)
    if uid is None or not User.select().where(User.id == uid).exists():
        raise NotFound(f"no user {user_email or user_id!r}; create the user first.")
    return uid


def _owned_by(
    user_id: Any, user_email: Any, status: Any, include_trashed: bool = False
) -> peewee.ModelSelect[Conversation]:
    """A user's conversations (none for an unknown user: ``IN ()`` matches nothing)."""
    uid = _user_id(user_id, user_email)
    owner = Conversation.id.in_([]) if uid is None else Conversation.user == uid
    query = Conversation.select().where(owner)
    if not include_trashed:
        query = query.where(Conversation.trashed_at.is_null())
    if status is not None:
        query = query.where(
            Conversation.status == check_choice("status", status, CONVERSATION_STATUSES)
        )
    return query


def _new_conversation(owner: int | None, fields: dict[str, Any]) -> Conversation:
    now = utcnow()
    conv = Conversation.create(user=owner, created_at=now, updated_at=now, **fields)
    conv.__data__.setdefault("pinned", False)  # the column's SQL default
    return conv


_NEWEST_FIRST = (Conversation.updated_at.desc(), Conversation.id.desc())
_RECENT = (
    'SELECT {conversation} FROM "conversation" WHERE "user_id" = {p}{trash} '
    'ORDER BY "updated_at" DESC, "id" DESC LIMIT {p} OFFSET {p}'
)
_RECENT_WITH_STATUS = (
    'SELECT {conversation} FROM "conversation" WHERE "user_id" = {p} AND "status" = {p}{trash} '
    'ORDER BY "updated_at" DESC, "id" DESC LIMIT {p} OFFSET {p}'
)
_NOT_TRASHED = ' AND "trashed_at" IS NULL'
#: (status given, include_trashed) -> the statement's template
_RECENT_SQL = {
    (False, False): _RECENT.replace("{trash}", _NOT_TRASHED),
    (False, True): _RECENT.replace("{trash}", ""),
    (True, False): _RECENT_WITH_STATUS.replace("{trash}", _NOT_TRASHED),
    (True, True): _RECENT_WITH_STATUS.replace("{trash}", ""),
}


# -- the API ---------------------------------------------------------------------


@operation
def create_conversation(
    s: Session,
    user_id: int | str | User | None = None,
    title: str | None = None,
    status: str = "active",
    default_model: str | None = None,
    *,
    external_id: str | None = None,
    last_message: str | None = None,
    user_email: str | None = None,
    pinned: bool | None = None,
    tags: list[str] | None = None,
    metadata: Any = None,
) -> Conversation:
    """A new conversation, anonymous unless a user is given; Conflict on a taken external_id.

    ``pinned``, free-form ``tags`` (strings) and the app's own ``metadata``
    (JSON) are what a sidebar shows and filters on.
    """
    fields = {
        **_fields(title, status, default_model, last_message),
        **_sidebar(pinned, tags, metadata),
    }
    if external_id is not None:
        fields["external_id"] = check_text("external_id", external_id, max_length=255)
    return _new_conversation(_existing_owner(user_id, user_email), fields)


@operation
def get_conversation_by_id(s: Session, conversation_id: int | str) -> Conversation | None:
    """The conversation with this id (int); a string is a thread id (else a uuid). None if none."""
    return get_row(Conversation, conversation_id)


@operation
def get_conversation_by_uuid(
    s: Session, conversation_uuid: str | _uuid.UUID
) -> Conversation | None:
    """The conversation with this public uuid, or None (also for a malformed uuid)."""
    if isinstance(conversation_uuid, str):
        check_storable("conversation_uuid", conversation_uuid)
    uid = uuid_or_none(conversation_uuid)
    return None if uid is None else Conversation.get_or_none(Conversation.uuid == uid)


@operation
def get_conversation_by_thread_id(s: Session, thread_id: str) -> Conversation | None:
    """The conversation whose ``thread_id`` (external_id, else uuid) is this, or None."""
    return _by_thread(thread_id)


@operation
def get_or_create_conversation(
    s: Session,
    thread_id: str,
    user_id: int | str | User | None = None,
    title: str | None = None,
    last_message: str | None = None,
    *,
    user_email: str | None = None,
) -> tuple[Conversation, bool]:
    """``(conversation, created)`` for an app's thread id, created with these values if new.

    An existing conversation is returned unchanged; Conflict if it belongs to
    another user than the one given.
    """
    conv = _by_thread(thread_id)
    if conv is None:
        fields = _fields(title=title, last_message=last_message)
        fields["external_id"] = thread_id
        return _new_conversation(_existing_owner(user_id, user_email), fields), True
    if user_id is not None or user_email is not None:
        if conv.user_id != _user_id(user_id, user_email):
            raise Conflict(f"thread {thread_id!r} belongs to another user.")
    return conv, False


@read_operation
def list_conversations_for_user(
    s: Session,
    user_id: int | str | User | None = None,
    status: str | None = None,
    limit: int | None = 100,
    offset: int = 0,
    *,
    user_email: str | None = None,
    pinned: bool | None = None,
    tag: str | None = None,
    pinned_first: bool = False,
    include_trashed: bool = False,
    title_contains: str | None = None,
) -> list[Conversation]:
    """A user's conversations, most recently updated first ([] for an unknown user).

    ``pinned`` keeps only pinned (True) or unpinned (False) ones, ``tag`` only
    those carrying that tag, ``title_contains`` only those whose title contains
    that text (case-insensitive for ASCII letters on SQLite, for all on
    PostgreSQL; ``%`` and ``_`` are plain characters); ``pinned_first`` lists
    the pinned ones first. Trashed conversations are left out unless
    ``include_trashed=True``.
    """
    plain = pinned is None and tag is None and pinned_first is False and title_contains is None
    if (
        plain
        and user_email is None
        and isinstance(user_id, (int, User))
        and not isinstance(user_id, bool)
    ):
        limit, offset = check_page(limit, offset)  # the hot path: fixed SQL (see _fast.py)
        uid = id_of(User, user_id, "user_id")
        params: tuple[Any, ...]
        if status is None:
            params = (uid, limit, offset)
        else:
            status = check_choice("status", status, CONVERSATION_STATUSES)
            params = (uid, status, limit, offset)
        sql = _RECENT_SQL[status is not None, bool(include_trashed)]
        cursor = s.db.execute_sql(statement(s.db, sql, conversation=Conversation), params)
        return fetch_models(Conversation, cursor)
    query = _owned_by(user_id, user_email, status, include_trashed)
    query = _filtered(s.db, query, pinned, tag, pinned_first, title_contains)
    return paginate(query, limit, offset)


@operation
def list_all_conversations(
    s: Session,
    status: str | None = None,
    limit: int | None = 100,
    offset: int = 0,
    *,
    pinned: bool | None = None,
    tag: str | None = None,
    pinned_first: bool = False,
    include_trashed: bool = False,
    title_contains: str | None = None,
) -> list[Conversation]:
    """Every conversation (of any user, or anonymous), most recently updated first;
    ``pinned``, ``tag``, ``title_contains`` and ``pinned_first`` as in
    :func:`list_conversations_for_user`.

    Trashed conversations are left out unless ``include_trashed=True``.
    """
    query = Conversation.select()
    if not include_trashed:
        query = query.where(Conversation.trashed_at.is_null())
    if status is not None:
        query = query.where(
            Conversation.status == check_choice("status", status, CONVERSATION_STATUSES)
        )
    query = _filtered(s.db, query, pinned, tag, pinned_first, title_contains)
    return paginate(query, limit, offset)


@operation
def count_conversations_for_user(
    s: Session,
    user_id: int | str | User | None = None,
    status: str | None = None,
    *,
    user_email: str | None = None,
    include_trashed: bool = False,
) -> int:
    """How many conversations a user has (0 for an unknown user; trashed ones not counted)."""
    return int(_owned_by(user_id, user_email, status, include_trashed).count())


@operation
def update_conversation(
    s: Session,
    conversation_id: int | str | Conversation,
    title: str | None = None,
    status: str | None = None,
    default_model: str | None = None,
    last_message: str | None = None,
    *,
    pinned: bool | None = None,
    tags: list[str] | None = None,
    metadata: Any = None,
) -> Conversation | None:
    """Change the values given (None leaves a value as is); None if no such conversation.

    ``tags=[]`` removes every tag.
    """
    fields = {
        **_fields(title, status, default_model, last_message),
        **_sidebar(pinned, tags, metadata),
    }
    return update_row(get_row(Conversation, conversation_id), fields)


@operation
def archive_conversation(
    s: Session, conversation_id: int | str | Conversation
) -> Conversation | None:
    """Set the status to ``archived``; None if there is no such conversation."""
    return update_row(get_row(Conversation, conversation_id), {"status": "archived"})


@operation
def delete_conversation(s: Session, conversation_id: int | str | Conversation) -> bool:
    """Delete a conversation with its messages and responses; False if it did not exist."""
    conv = get_row(Conversation, conversation_id)
    if conv is None:
        return False
    release_owned_files(s, conversation_id=conv.id)  # unused files go after commit
    return bool(conv.delete_instance())


# Aliases (see localchat.compat), not in __all__.
create_chat_session = create_conversation
get_chat_session = get_conversation_by_id
update_chat_session = update_conversation
delete_chat_session = delete_conversation
