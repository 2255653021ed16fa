"""Streamed replies from async code: the twin of ``localchat.repository.stream_reply``.

    from localchat.aio import stream_reply

    async with await stream_reply(store, conv_id, model="llama3") as reply:
        async for chunk in model_chunks():
            await reply.append(chunk)       # its own transaction, committed at once
    # leaving the block: "complete"; await reply.stop(): "incomplete";
    # an exception: "error" with its text (and it is raised again)

Each step is one async write session running the repository's own
``start_reply`` / ``append_to_reply`` / ``finish_reply``.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

from ..database import Store
from ..models import Conversation, Message
from ..repository.streaming import append_to_reply, ending, finish_reply, start_reply
from .store import AsyncStore, open_async_store

__all__ = ["AsyncReplyStream", "stream_reply"]


class AsyncReplyStream:
    """One reply being streamed; made by :func:`stream_reply`."""

    def __init__(self, store: AsyncStore, message: Message) -> None:
        self.store = store
        #: The reply as it was created (its ``id`` names it).
        self.message = message
        self.id: int = message.id
        self.status: str = "streaming"

    async def append(self, text: str) -> None:
        """Save one more chunk (committed before this returns)."""
        async with self.store.session() as s:
            await s.run(append_to_reply, self.id, text)

    async def stop(self) -> Message:
        """The user stopped it: the reply keeps what arrived and is ``incomplete``."""
        return await self._finish("incomplete")

    async def fail(self, error: str) -> Message:
        """The model failed: the reply keeps what arrived, status ``error`` with this text."""
        return await self._finish("error", error=error)

    async def _finish(self, status: str, error: str | None = None) -> Message:
        async with self.store.session() as s:
            done = await s.run(finish_reply, self.id, status, error=error)
        self.status = status
        self.message = done
        return done

    async def __aenter__(self) -> AsyncReplyStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.status == "streaming":
            await self._finish(*ending(exc))


async def stream_reply(
    store: str | os.PathLike[str] | Store | AsyncStore | None,
    conversation_id: int | str | Conversation | None = None,
    *,
    parent_id: int | str | Message | None = None,
    replaces: int | str | Message | None = None,
    model: str | None = None,
    metadata: Any = None,
) -> AsyncReplyStream:
    """Create the placeholder reply (committed at once) and return a stream to feed it."""
    astore = open_async_store(store)
    async with astore.session() as s:
        msg = await s.run(
            start_reply, conversation_id, parent_id=parent_id, replaces=replaces, model=model,
            metadata=metadata,
        )  # fmt: skip
    return AsyncReplyStream(astore, msg)
