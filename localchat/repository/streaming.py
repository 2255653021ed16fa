"""Streamed replies: a placeholder, chunks saved as they come, a final status.

    from localchat import open_store
    from localchat.repository import stream_reply

    store = open_store("chat.db")
    with stream_reply(store, conv_id, model="llama3") as reply:   # status "streaming"
        for chunk in llm_chunks():
            reply.append(chunk)          # its own transaction: a crash loses at most this one
    # leaving the block: "complete"; reply.stop() makes it "incomplete"; an exception
    # makes it "error" with the exception's text (and is raised again)

    with store.session() as s:           # at start-up, before anything streams
        mark_interrupted_replies(s)      # replies a crash left "streaming" -> "incomplete"

The same steps as functions taking a session (the caller owns the transactions):
:func:`start_reply`, :func:`append_to_reply`, :func:`finish_reply`. A chunk is
one UPDATE of the reply's row (``content = content || chunk``), which also keeps
the search index right on SQLite; the conversation's preview and ``updated_at``
follow when the reply finishes (and in :func:`mark_interrupted_replies`).
Each reply is its own message, so several can stream at once (two
regenerations of one answer write into two messages).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from ..checks import check_choice, check_text, id_of
from ..database import Session, Store
from ..errors import Conflict, NotFound, ValidationError
from ..fastsql import statement
from ..models import Conversation, Message, utcnow
from ..operations import operation
from ._bump import refresh_preview
from .messages import add_message, add_sibling, update_message

__all__ = [
    "start_reply",
    "append_to_reply",
    "finish_reply",
    "mark_interrupted_replies",
    "ReplyStream",
    "stream_reply",
]

_APPEND = (
    'UPDATE "message" SET "content" = "content" || {p}, "updated_at" = {p} '
    'WHERE "id" = {p} AND "status" = \'streaming\''
)
_ENDINGS = ("complete", "incomplete", "error")
_time_db = Message.updated_at.db_value


@operation
def start_reply(
    s: Session,
    conversation_id: int | str | Conversation | None = None,
    *,
    parent_id: int | str | Message | None = None,
    replaces: int | str | Message | None = None,
    model: str | None = None,
    metadata: Any = None,
) -> Message:
    """A new, empty assistant message with status ``streaming``.

    Under ``parent_id`` (else the conversation's current leaf), or, with
    ``replaces``, a new version of that message (a regeneration: same parent).
    It becomes the current leaf.
    """
    if replaces is not None:
        msg = add_sibling(s, replaces, "", metadata, model=model)
    elif conversation_id is None:
        raise ValidationError("start_reply needs conversation_id or replaces.")
    else:
        msg = add_message(
            s, conversation_id, "assistant", "", metadata, parent_id=parent_id, model=model
        )
    Message.update(status="streaming").where(Message.id == msg.id).execute()
    msg.__data__["status"] = "streaming"
    return msg


@operation
def append_to_reply(s: Session, message_id: int | str | Message, text: str) -> None:
    """Add ``text`` to the end of a streaming reply (one UPDATE).

    NotFound for a missing message; Conflict for one that is not streaming.
    """
    text = check_text("text", text, allow_empty=True)
    mid = id_of(Message, message_id, "message_id")
    db = s.db
    params = (text, _time_db(utcnow()), mid)
    if mid is not None and db.execute_sql(statement(db, _APPEND), params).rowcount:
        return
    status = Message.select(Message.status).where(Message.id == mid).scalar() if mid else None
    if status is None:
        raise NotFound(f"no message {message_id!r} to add to.")
    raise Conflict(f"message {message_id!r} is {status}, not streaming.")


@operation
def finish_reply(
    s: Session,
    message_id: int | str | Message,
    status: str = "complete",
    *,
    error: str | None = None,
    content: str | None = None,
) -> Message:
    """End a reply: ``complete``, ``incomplete`` (stopped) or ``error`` (with ``error`` text).

    ``content`` replaces the text saved so far (None keeps it). The
    conversation's preview and ``updated_at`` follow. NotFound for a missing message.
    """
    status = check_choice("status", status, _ENDINGS)
    done = update_message(s, message_id, content=content, status=status, error=error)
    if done is None:
        raise NotFound(f"no message {message_id!r} to finish.")
    return done


@operation
def mark_interrupted_replies(s: Session) -> int:
    """Mark every reply still ``streaming`` as ``incomplete``; how many there were.

    Call it once at start-up, before this app streams anything: a reply left
    ``streaming`` then can only be one a crash interrupted. Every chunk saved
    before the crash is kept.
    """
    rows = list(
        Message.select(Message.id, Message.conversation).where(Message.status == "streaming")
    )
    if not rows:
        return 0
    ids = [row.id for row in rows]
    now = utcnow()
    Message.update(status="incomplete", updated_at=now).where(Message.id.in_(ids)).execute()
    for conv_id in {row.conversation_id for row in rows}:
        refresh_preview(conv_id)
    return len(rows)


class ReplyStream:
    """One reply being streamed; made by :func:`stream_reply`. Every call runs in its own
    write session (one transaction) on the store."""

    def __init__(self, store: Store, message: Message) -> None:
        self.store = store
        #: The reply as it was created (its ``id`` names it).
        self.message = message
        self.id: int = message.id
        self.status: str = "streaming"

    def append(self, text: str) -> None:
        """Save one more chunk (committed before this returns)."""
        with self.store.session() as s:
            append_to_reply(s, self.id, text)

    def stop(self) -> Message:
        """The user stopped it: the reply keeps what arrived and is ``incomplete``."""
        return self._finish("incomplete")

    def fail(self, error: str) -> Message:
        """The model failed: the reply keeps what arrived, status ``error`` with this text."""
        return self._finish("error", error=error)

    def _finish(self, status: str, error: str | None = None) -> Message:
        with self.store.session() as s:
            done = finish_reply(s, self.id, status, error=error)
        self.status = status
        self.message = done
        return done

    def __enter__(self) -> ReplyStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.status == "streaming":
            self._finish(*ending(exc))


def ending(exc: BaseException | None) -> tuple[str, str | None]:
    """How a reply still streaming ends when its block is left: ``(status, error text)``.

    "complete" when the block ended normally, else "error" with the exception's text.
    """
    if exc is None:
        return "complete", None
    return "error", str(exc) or type(exc).__name__


def stream_reply(
    store: Store,
    conversation_id: int | str | Conversation | None = None,
    *,
    parent_id: int | str | Message | None = None,
    replaces: int | str | Message | None = None,
    model: str | None = None,
    metadata: Any = None,
) -> ReplyStream:
    """Create the placeholder reply (see :func:`start_reply`, committed at once) and
    return a :class:`ReplyStream` to feed it; use it as a context manager."""
    with store.session() as s:
        msg = start_reply(
            s, conversation_id, parent_id=parent_id, replaces=replaces, model=model,
            metadata=metadata,
        )  # fmt: skip
    return ReplyStream(store, msg)
