"""What the chat app's screens draw: plain values, made by :mod:`localchat.app.data`.

    from localchat.app.views import ShownMessage
    message.position, len(message.versions)      # 2, 3: the "< 2/3 >" of a message

Frozen dataclasses copied out of the read session that loaded them, so a
screen can keep and draw them on the UI thread without touching the store.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

__all__ = [
    "PAGE",
    "WINDOW",
    "MARKERS",
    "CONTEXT",
    "SidebarRow",
    "ShownMessage",
    "ConversationView",
    "SearchResult",
    "DocumentRow",
    "ReplyOutcome",
]

#: Conversations the sidebar loads at a time (more as the user scrolls down).
PAGE = 200
#: Messages of the current branch a conversation opens on (older ones on demand).
WINDOW = 24
#: Search highlights: private-use characters the screens turn into styles.
MARKERS = ("\ue000", "\ue001")
#: Messages of the branch sent to the model as context.
CONTEXT = 50


@dataclass(frozen=True)
class SidebarRow:
    """One conversation in the sidebar."""

    id: int
    title: str
    pinned: bool
    tags: list[str]
    updated_at: dt.datetime
    model: str | None
    trashed: bool = False


@dataclass(frozen=True)
class ShownMessage:
    """One message of the open branch, with what the window shows around it."""

    id: int
    parent_id: int | None
    role: str
    content: str
    model: str | None
    created_at: dt.datetime
    status: str
    error: str | None
    tokens: int | None  # the response's tokens_total (assistant messages)
    versions: tuple[int, ...]  # ids of its versions (itself included), oldest first

    @property
    def position(self) -> int:
        """1-based place among its versions (``2`` of ``< 2/3 >``)."""
        return self.versions.index(self.id) + 1


@dataclass
class ConversationView:
    """The open conversation: its current branch (its last ``WINDOW`` messages, or more)."""

    id: int
    title: str
    model: str | None
    tags: list[str]
    messages: list[ShownMessage] = field(default_factory=list)
    older: bool = False  # the branch goes further back than what is loaded
    leaf_id: int | None = None  # the branch's last message (hidden ones too): new ones go below
    documents: list[DocumentRow] = field(default_factory=list)


@dataclass(frozen=True)
class SearchResult:
    """A search hit: where it is and the passage, matches between :data:`MARKERS`."""

    conversation_id: int
    message_id: int | None
    title: str
    role: str | None
    snippet: str


@dataclass(frozen=True)
class DocumentRow:
    id: int
    filename: str
    size: int | None
    mime_type: str | None


@dataclass(frozen=True)
class ReplyOutcome:
    """How a streamed reply ended: ``complete``, ``incomplete`` (stopped) or ``error``."""

    message_id: int
    status: str
    error: str | None = None
