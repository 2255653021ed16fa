"""What the search functions of :mod:`localchat.search` return: one hit per match.

hit = search_messages(s, "museum")[0]
hit.message, hit.conversation, hit.snippet, hit.score   # score: -bm25, higher is better
json.dumps(hit.to_dict())
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..models import Conversation, KnowledgeChunk, Message

__all__ = ["MessageHit", "ConversationHit", "KnowledgeHit"]


@dataclass(frozen=True)
class MessageHit:
    message: Message
    conversation: Conversation
    snippet: str  # the matching passage, matches between the markers
    score: float  # -bm25: higher is better

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message.to_dict(),
            "conversation": self.conversation.to_dict(),
            "snippet": self.snippet,
            "score": self.score,
        }


@dataclass(frozen=True)
class ConversationHit:
    conversation: Conversation
    snippet: str  # the highlighted title, or the best message's passage
    score: float
    message: Message | None  # the best matching message; None when the title won

    def to_dict(self) -> dict[str, Any]:
        return {
            "conversation": self.conversation.to_dict(),
            "message": self.message.to_dict() if self.message is not None else None,
            "snippet": self.snippet,
            "score": self.score,
        }


@dataclass(frozen=True)
class KnowledgeHit:
    chunk: KnowledgeChunk
    snippet: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"chunk": self.chunk.to_dict(), "snippet": self.snippet, "score": self.score}
