"""What the chat app reads and writes: one function per screen action, on localchat's public API.

    from localchat.app.data import ChatData
    from localchat.app.llm import EchoModel

    data = ChatData.open("chat.db")                    # open_store + upgrade
    data.recover()                                     # replies a crash left streaming
    conv_id = data.new_conversation("First chat", "echo")
    data.send(conv_id, "hello there", EchoModel())     # the question, then the streamed reply
    view = data.conversation(conv_id)                  # the current branch, ready to draw
    [(m.role, m.content) for m in view.messages]
    # [('user', 'hello there'), ('assistant', 'hello there')]

No Textual here: the screens (``ui.py``, ``screens.py``) call these functions
from worker threads, so this module is the embedding guide in one file. Every
function that only reads runs in ``store.read_session()`` (a snapshot: it
never waits for the app's own writes, a streaming reply included); writes are
short ``store.session()`` blocks; a reply streams through
:func:`localchat.app.llm.reply_into_store`, each chunk committed on its own,
so stopping, a failed call or a crash leaves an ``incomplete`` or ``error``
message, never a lost one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ..backup import BackupResult, backup_store
from ..config import DEFAULT_APP_NAME
from ..database import Store, open_store
from ..maintenance import StatsReport, store_stats
from ..models import Message, Response
from ..portable import ImportReport, export_store, import_path
from ..repository import (
    add_message,
    add_sibling,
    create_conversation,
    create_document_with_file,
    get_conversation_by_id,
    get_message_by_id,
    list_all_conversations,
    list_documents,
    list_messages_for_conversation,
    list_trash,
    mark_interrupted_replies,
    open_document,
    restore_conversation,
    switch_branch,
    trash_conversation,
    update_conversation,
)
from ..search import search_conversations, search_messages
from .llm import ChatModel, branch_messages, reply_into_store
from .views import (
    CONTEXT,
    MARKERS,
    PAGE,
    WINDOW,
    ConversationView,
    DocumentRow,
    ReplyOutcome,
    SearchResult,
    ShownMessage,
    SidebarRow,
)

__all__ = ["ChatData"]


def _title(text: str) -> str:
    words = " ".join(text.split())
    return (words[:60] + "…") if len(words) > 60 else (words or "New chat")


def _shown(m: Message) -> bool:
    """Hidden messages of an import (ChatGPT's system scaffolding) are not drawn."""
    meta = m.metadata if isinstance(m.metadata, dict) else {}
    return not meta.get("hidden")


class ChatData:
    """The app's data: a :class:`~localchat.Store` and one method per screen action.

    Methods may run in any thread (each opens its own session); none keeps a
    session open between calls, and none holds a write session while a model runs.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    def open(
        cls, db: str | os.PathLike[str] | None = None, *, app_name: str = DEFAULT_APP_NAME
    ) -> ChatData:
        """The per-user store of ``app_name`` (or the file / URL ``db``), migrated.

        Call :meth:`recover` before the first reply streams (the app does it
        in a worker while the sidebar loads: it scans every message).
        """
        target = os.fspath(db) if db is not None else None
        if target is not None and "://" in target:
            store = open_store(url=target, app_name=app_name)
        else:
            store = open_store(target, app_name=app_name)
        store.upgrade()
        return cls(store)

    def recover(self) -> int:
        """Mark replies a crash left ``streaming`` as ``incomplete``; how many there were."""
        with self.store.session() as s:
            return mark_interrupted_replies(s)

    # -- the sidebar -----------------------------------------------------------------

    def sidebar(
        self, *, offset: int = 0, limit: int = PAGE, tag: str | None = None, query: str = ""
    ) -> list[SidebarRow]:
        """A page of conversations: pinned first, then the most recently updated.

        ``tag`` keeps one tag; ``query`` (words) keeps those whose title or
        messages match, best first (full-text search, one page).
        """
        with self.store.read_session() as s:
            if query.strip():
                if offset:
                    return []
                hits = search_conversations(s, query, limit=limit)
                convs = [h.conversation for h in hits]
                if tag is not None:
                    convs = [c for c in convs if tag in (c.tags or [])]
            else:
                convs = list_all_conversations(
                    s, limit=limit, offset=offset, tag=tag, pinned_first=True
                )
        return [self._row(c) for c in convs]

    def trash(self) -> list[SidebarRow]:
        """The conversations in the trash, most recently trashed first."""
        with self.store.read_session() as s:
            return [self._row(c, trashed=True) for c in list_trash(s).conversations]

    @staticmethod
    def _row(c: Any, trashed: bool = False) -> SidebarRow:
        return SidebarRow(
            c.id,
            c.title or "(untitled)",
            bool(c.pinned),
            list(c.tags or []),
            c.updated_at,
            c.default_model,
            trashed,
        )

    def set_trashed(self, conv_id: int, trashed: bool) -> None:
        with self.store.session() as s:
            (trash_conversation if trashed else restore_conversation)(s, conv_id)

    def set_pinned(self, conv_id: int, pinned: bool) -> None:
        with self.store.session() as s:
            update_conversation(s, conv_id, pinned=pinned)

    def set_tags(self, conv_id: int, tags: list[str]) -> None:
        with self.store.session() as s:
            update_conversation(s, conv_id, tags=tags)

    def set_model(self, conv_id: int, model_key: str) -> None:
        with self.store.session() as s:
            update_conversation(s, conv_id, default_model=model_key)

    # -- the open conversation ---------------------------------------------------------

    def conversation(
        self, conv_id: int, *, limit: int | None = WINDOW, focus: int | None = None
    ) -> ConversationView:
        """The conversation on its current branch: one read session, three queries
        (the branch, its responses, its versions) plus one for its documents.

        ``limit=None`` loads the whole branch; ``focus`` (a message id) loads as
        far back as needed to include that message.
        """
        with self.store.read_session() as s:
            conv = get_conversation_by_id(s, conv_id)
            if conv is None:
                return ConversationView(conv_id, "(deleted)", None, [])
            fetch = None if limit is None else limit + 1
            branch = list_messages_for_conversation(s, conv.id, limit=fetch, latest=True)
            if focus is not None and all(m.id != focus for m in branch):
                branch = list_messages_for_conversation(s, conv.id, limit=None, latest=True)
                limit = None
            older = limit is not None and len(branch) > limit
            if older:
                branch = branch[1:]
            view = ConversationView(
                conv.id,
                conv.title or "(untitled)",
                conv.default_model,
                list(conv.tags or []),
                older=older,
            )
            view.leaf_id = branch[-1].id if branch else None
            view.messages = self._decorate(conv.id, [m for m in branch if _shown(m)])
            view.documents = [
                DocumentRow(d.id, d.filename, d.size, d.mime_type)
                for d in list_documents(s, conversation_id=conv.id)
            ]
        return view

    @staticmethod
    def _decorate(conv_id: int, branch: list[Message]) -> list[ShownMessage]:
        """Token counts and versions of the branch's messages (two queries, inside the
        caller's read session)."""
        ids = [m.id for m in branch]
        responses: Any = Response.select(Response.message, Response.tokens_total)
        tokens: dict[int, int | None] = dict(responses.where(Response.message.in_(ids)).tuples())
        parents = {m.parent_id for m in branch}
        siblings: dict[int | None, list[int]] = {}
        query: Any = Message.select(Message.id, Message.parent)
        query = query.where(Message.conversation == conv_id)
        known = [p for p in parents if p is not None]
        cond = Message.parent.in_(known)
        if None in parents:
            cond = cond | Message.parent.is_null()
        for mid, parent in query.where(cond).order_by(Message.id).tuples():
            siblings.setdefault(parent, []).append(mid)
        return [
            ShownMessage(
                m.id,
                m.parent_id,
                m.role,
                m.content,
                m.model,
                m.created_at,
                m.status,
                m.error,
                tokens.get(m.id),
                tuple(siblings.get(m.parent_id, [m.id])),
            )
            for m in branch
        ]

    def flip(self, message: ShownMessage, step: int) -> int:
        """Show the previous (-1) or next (+1) version of a message; the version shown."""
        index = min(max(message.position - 1 + step, 0), len(message.versions) - 1)
        target = message.versions[index]
        with self.store.session() as s:
            switch_branch(s, target)
        return target

    def show_message(self, message_id: int) -> None:
        """Make the branch through this message the current one (a search hit in context)."""
        with self.store.session() as s:
            switch_branch(s, message_id)

    # -- sending and streaming ------------------------------------------------------------

    def new_conversation(self, title: str, model_key: str) -> int:
        with self.store.session() as s:
            return int(create_conversation(s, title=title, default_model=model_key).id)

    def ask(
        self, conv_id: int | None, text: str, model_key: str, parent_id: int | None = None
    ) -> tuple[int, int]:
        """Save the user's message below ``parent_id`` (default: the current leaf); a new
        conversation, titled after it, when ``conv_id`` is None. Returns both ids."""
        with self.store.session() as s:
            if conv_id is None:
                conv = create_conversation(s, title=_title(text), default_model=model_key)
                conv_id = int(conv.id)
            return conv_id, int(add_message(s, conv_id, "user", text, parent_id=parent_id).id)

    def edit(self, message_id: int, text: str) -> int:
        """A new version of a (user) message; it becomes the current leaf."""
        with self.store.session() as s:
            return int(add_sibling(s, message_id, text).id)

    def send(self, conv_id: int | None, text: str, model: ChatModel) -> ReplyOutcome:
        """Ask and stream the answer, in this thread (a script's or a test's shortcut)."""
        conv_id, mid = self.ask(conv_id, text, model.key)
        return self.reply(conv_id, model, parent_id=mid)

    def reply(
        self,
        conv_id: int,
        model: ChatModel,
        *,
        parent_id: int | None = None,
        replaces: int | None = None,
        on_start: Callable[[int], None] | None = None,
        on_chunk: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
    ) -> ReplyOutcome:
        """Stream the model's reply below ``parent_id`` (or as a new version of ``replaces``).

        The model gets the branch up to the message it answers (its last
        ``CONTEXT`` messages, :func:`~localchat.app.llm.branch_messages`);
        :func:`~localchat.app.llm.reply_into_store` does the rest: the empty reply
        is committed first (``on_start(id)``), then every chunk (``on_chunk(text)``
        after it is saved); ``stop`` set: the reply ends ``incomplete`` with what
        arrived; a :class:`ModelError` ends it ``error`` with its text; token
        counts go into its response when the model gives them.
        """
        with self.store.read_session() as s:
            below = parent_id
            if replaces is not None:  # the question it answers again (stream_reply checks it)
                replaced = get_message_by_id(s, replaces)
                below = replaced.parent_id if replaced is not None else None
            prompt = branch_messages(s, conv_id, CONTEXT, leaf_id=below) if below else []
        reply_id = reply_into_store(
            self.store,
            conv_id,
            model,
            prompt,
            parent_id=parent_id,
            replaces=replaces,
            on_start=on_start,
            on_chunk=on_chunk,
            stop=stop,
        )
        with self.store.read_session() as s:
            reply: Any = get_message_by_id(s, reply_id)
            return ReplyOutcome(reply_id, reply.status, reply.error)

    # -- search --------------------------------------------------------------------------

    def search(self, query: str, limit: int = 50) -> list[SearchResult]:
        """Messages matching ``query`` (words), best first, with highlighted passages."""
        if not query.strip():
            return []
        with self.store.read_session() as s:
            hits = search_messages(s, query, limit=limit, markers=MARKERS)
            return [
                SearchResult(
                    h.conversation.id,
                    h.message.id,
                    h.conversation.title or "(untitled)",
                    h.message.role,
                    h.snippet,
                )
                for h in hits
            ]

    # -- documents -------------------------------------------------------------------------

    def attach(self, conv_id: int, path: str | os.PathLike[str]) -> DocumentRow:
        """Copy a file into the store as a document of the conversation."""
        with self.store.session() as s:
            d = create_document_with_file(s, path, conversation_id=conv_id)
            return DocumentRow(d.id, d.filename, d.size, d.mime_type)

    def read_document(self, doc_id: int, limit: int = 200_000) -> str:
        """The document's text (its first ``limit`` bytes), or a line saying it is binary."""
        with self.store.read_session() as s:
            fp: IO[bytes]
            with open_document(s, doc_id) as fp:
                head = fp.read(limit + 1)
        try:
            text = head[:limit].decode("utf-8")
        except UnicodeDecodeError:
            return f"(binary file, {len(head)}{'+' if len(head) > limit else ''} bytes)"
        return text + ("\n… (cut)" if len(head) > limit else "")

    # -- usage, import, export, backup -----------------------------------------------------

    def usage(self, by: str = "day") -> StatsReport:
        """Tokens per model and period (``store_stats``)."""
        with self.store.read_session() as s:
            return store_stats(s, by=by)

    def import_file(self, path: str | os.PathLike[str]) -> ImportReport:
        """A ChatGPT export, an llm ``logs.db`` or a localchat export (detected), all or nothing."""
        with self.store.session() as s:
            return import_path(s, path)

    def export_file(self, path: str | os.PathLike[str]) -> dict[str, int]:
        """The whole store as a localchat export (JSON Lines), written from a read session."""
        target = Path(path)
        partial = target.with_name(target.name + ".partial")
        with self.store.read_session() as s, open(partial, "w", encoding="utf-8") as fp:
            written = export_store(s, fp)
        os.replace(partial, target)
        return written

    def backup(self, where: str | os.PathLike[str] | None = None) -> BackupResult:
        """A backup archive (zip) of the store into ``where`` (a file or a folder)."""
        return backup_store(where, self.store.path)
