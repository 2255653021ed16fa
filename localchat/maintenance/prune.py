"""Prune: hard-delete old, archived or trashed conversations and the files only they used.

    from localchat import local_session
    from localchat.maintenance import prune

    with local_session("/tmp/prune-example.db") as s:
        report = prune(s, archived_only=True)            # a dry run: counts only
        print(report.conversations, report.messages, report.bytes)
        prune(s, archived_only=True, dry_run=False)      # deleted; files go after commit

A conversation matches when every criterion given holds: ``older_than`` (a
timedelta: not updated for that long, or a datetime: updated before it),
``archived_only``, ``trashed_only``, ``user_id``. At least one of the first
three is required (a prune never means "everything"). Its messages, responses
and documents go with it (ON DELETE CASCADE); a stored file goes after the
commit when no remaining document uses it, and ``bytes`` counts those files.
``limit`` prunes the oldest matches first, at most that many, so a caller can
prune in short transactions (``localchat prune`` does, 200 at a time) and the
app keeps writing in between. ``vacuum_store`` then gives the free pages back
(``PRAGMA incremental_vacuum``, a step at a time).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import peewee

from ..checks import check_count, check_cutoff, id_of
from ..database import Session, Store
from ..errors import ValidationError
from ..models import Conversation, Document, Message, Response, User
from ..operations import operation
from ..repository import delete_conversation

__all__ = ["PruneReport", "prune", "vacuum_store"]


@dataclass
class PruneReport:
    """What a prune deleted (or, in a dry run, would delete)."""

    conversations: int = 0
    messages: int = 0
    responses: int = 0
    documents: int = 0
    files: int = 0
    bytes: int = 0
    dry_run: bool = True

    def add(self, other: PruneReport) -> None:
        for name in ("conversations", "messages", "responses", "documents", "files", "bytes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _matching(
    older_than: Any, archived_only: bool, trashed_only: bool, user_id: Any, limit: Any
) -> peewee.ModelSelect[Conversation]:
    if older_than is None and not archived_only and not trashed_only:
        raise ValidationError(
            "prune needs older_than, archived_only or trashed_only: it never deletes everything."
        )
    query = Conversation.select(Conversation.id)
    if older_than is not None:
        query = query.where(Conversation.updated_at < check_cutoff("older_than", older_than))
    if archived_only:
        query = query.where(Conversation.status == "archived")
    if trashed_only:
        query = query.where(Conversation.trashed_at.is_null(False))
    if user_id is not None:
        uid = id_of(User, user_id, "user_id")
        query = query.where(Conversation.user == (uid if uid is not None else -1))
    query = query.order_by(Conversation.updated_at, Conversation.id)
    if limit is not None:
        query = query.limit(check_count("limit", limit))
    return query


@operation
def prune(
    s: Session,
    *,
    older_than: Any = None,
    archived_only: bool = False,
    trashed_only: bool = False,
    user_id: Any = None,
    dry_run: bool = True,
    limit: int | None = None,
) -> PruneReport:
    """Delete the matching conversations (``dry_run=False``) and report what went."""
    ids = [c.id for c in _matching(older_than, archived_only, trashed_only, user_id, limit)]
    report = PruneReport(conversations=len(ids), dry_run=dry_run)
    if not ids:
        return report
    report.messages = Message.select().where(Message.conversation.in_(ids)).count()
    report.responses = Response.select().join(Message).where(Message.conversation.in_(ids)).count()
    report.documents = Document.select().where(Document.conversation.in_(ids)).count()
    kept = Document.select(Document.stored_name).where(
        Document.stored_name.is_null(False),
        Document.conversation.is_null() | Document.conversation.not_in(ids),
    )
    freed: Any = (
        Document.select(Document.stored_name, peewee.fn.MAX(Document.size))
        .where(
            Document.conversation.in_(ids),
            Document.stored_name.is_null(False),
            Document.stored_name.not_in(kept),
        )
        .group_by(Document.stored_name)
        .tuples()
    )
    for _name, size in freed:
        report.files += 1
        report.bytes += int(size or 0)
    if not dry_run:
        for conv_id in ids:
            delete_conversation(s, conv_id)
    return report


def vacuum_store(store: Store, *, step_pages: int = 1_000) -> str:
    """Give free pages back to the file system, ``step_pages`` per short transaction.

    Needs ``auto_vacuum = INCREMENTAL`` (the store's mode is reported
    otherwise: a full ``VACUUM`` rewrites the file and blocks writers while it
    runs, so it is left to the user). Returns what was done, as a sentence.
    """
    if not store.is_sqlite:
        return "nothing to do: PostgreSQL reclaims space with its own VACUUM."
    step_pages = max(1, check_count("step_pages", step_pages))
    db = store.db
    with db.connection_context():
        mode = db.execute_sql("PRAGMA auto_vacuum").fetchone()[0]
        before = db.execute_sql("PRAGMA freelist_count").fetchone()[0]
    if mode != 2:
        return (
            f"{before} free pages kept: this store's auto_vacuum mode is not INCREMENTAL; run "
            "`sqlite3 <database> 'PRAGMA auto_vacuum = INCREMENTAL; VACUUM;'` while the app "
            "is closed to switch it (once; it rewrites the file)."
        )
    left = before
    while left:
        with store.session() as s:
            s.db.execute_sql(f"PRAGMA incremental_vacuum({int(step_pages)})").fetchall()
            left = s.db.execute_sql("PRAGMA freelist_count").fetchone()[0]
    return f"gave {before} free pages back."
