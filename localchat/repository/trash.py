"""Trash (soft delete) for conversations and documents; ``delete_*`` stays the hard delete.

    from localchat import local_session
    from localchat.repository import (create_conversation, list_conversations_for_user,
        create_user, empty_trash, list_trash, restore_conversation, trash_conversation)

    with local_session("/tmp/trash-example.db") as s:
        ada = create_user(s, email="trash@example.org")
        conv = create_conversation(s, ada.id, "Old plans")
        trash_conversation(s, conv.id)             # gone from listings, counts, search
        assert list_conversations_for_user(s, ada.id) == []
        assert [c.id for c in list_trash(s, user_id=ada.id).conversations] == [conv.id]
        restore_conversation(s, conv.id)           # back, whole
        trash_conversation(s, conv.id)
        empty_trash(s)                             # deleted for good (files after commit)

A trashed conversation keeps its messages, responses and documents; listings
(``list_conversations_for_user``, ``list_all_conversations``,
``count_conversations_for_user``, ``list_documents``), searches and exports
leave it out unless given ``include_trashed=True``. Needs migration 0009.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..checks import check_cutoff, get_row, id_of
from ..database import Session
from ..models import Conversation, Document, User, utcnow
from ..operations import operation
from .conversations import delete_conversation
from .documents import delete_document

__all__ = [
    "Trash",
    "trash_conversation",
    "restore_conversation",
    "trash_document",
    "restore_document",
    "list_trash",
    "empty_trash",
]


@dataclass
class Trash:
    """What is in the trash, newest first."""

    conversations: list[Conversation] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)


def _set(model: Any, key: Any, value: Any) -> Any:
    row = get_row(model, key)
    if row is None:
        return None
    if (row.trashed_at is None) != (value is None):
        model.update(trashed_at=value).where(model.id == row.id).execute()
        row.trashed_at = value
    return row


@operation
def trash_conversation(s: Session, conversation_id: Any) -> Conversation | None:
    """Put a conversation in the trash (kept whole); None if there is no such conversation."""
    return _set(Conversation, conversation_id, utcnow())


@operation
def restore_conversation(s: Session, conversation_id: Any) -> Conversation | None:
    """Take a conversation out of the trash; None if there is no such conversation."""
    return _set(Conversation, conversation_id, None)


@operation
def trash_document(s: Session, document_id: Any) -> Document | None:
    """Put a document in the trash (its file stays); None if there is no such document."""
    return _set(Document, document_id, utcnow())


@operation
def restore_document(s: Session, document_id: Any) -> Document | None:
    """Take a document out of the trash; None if there is no such document."""
    return _set(Document, document_id, None)


@operation
def list_trash(s: Session, user_id: Any = None) -> Trash:
    """The trashed conversations and documents (of one user when ``user_id`` is given)."""
    convs = Conversation.select().where(Conversation.trashed_at.is_null(False))
    docs = Document.select().where(Document.trashed_at.is_null(False))
    if user_id is not None:
        uid = id_of(User, user_id, "user_id")
        convs = convs.where(Conversation.user == uid)
        docs = docs.where(Document.user == uid)
    return Trash(
        list(convs.order_by(Conversation.trashed_at.desc(), Conversation.id.desc())),
        list(docs.order_by(Document.trashed_at.desc(), Document.id.desc())),
    )


@operation
def empty_trash(s: Session, older_than: Any = None) -> dict[str, int]:
    """Delete for good what is in the trash (trashed before ``now - older_than``).

    ``older_than``: a timedelta, or a datetime (trashed before it). Files no
    remaining document uses go after the commit. Returns the counts deleted.
    """
    cutoff = None if older_than is None else check_cutoff("older_than", older_than)
    convs = Conversation.select(Conversation.id).where(Conversation.trashed_at.is_null(False))
    docs = Document.select(Document.id).where(Document.trashed_at.is_null(False))
    if cutoff is not None:
        convs = convs.where(Conversation.trashed_at < cutoff)
        docs = docs.where(Document.trashed_at < cutoff)
    done = {"conversations": 0, "documents": 0}
    for doc_id in [d.id for d in docs]:
        done["documents"] += delete_document(s, doc_id, delete_file=True)
    for conv_id in [c.id for c in convs]:
        done["conversations"] += delete_conversation(s, conv_id)
    return done
