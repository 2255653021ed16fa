"""localchat through its public API, the way a chat client uses it.

One ``get_session(path)`` (one transaction) per user action: per appended
message, per opened conversation, per conversation list.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from localchat import get_session
from localchat.export import export_messages_jsonl
from localchat.repository import (
    add_message,
    create_conversation,
    import_messages,
    list_conversations_for_user,
    list_messages_for_conversation,
)

__all__ = ["NAME", "append", "bulk_import", "open_conversation", "list_conversations"]

NAME = "localchat"


def append(path: Path, pragmas: Sequence[str], plan: list[dict[str, Any]]) -> list[float]:
    """W1: per conversation, create it, then one session (transaction) per message."""
    latencies = []
    clock = time.perf_counter
    for spec in plan:
        with get_session(path) as s:
            cid = create_conversation(s, user_id=spec["user_id"], title=spec["title"]).id
        for role, content in spec["messages"]:
            t0 = clock()
            with get_session(path) as s:
                add_message(s, cid, role, content)
            latencies.append(clock() - t0)
    return latencies


def bulk_import(
    path: Path, pragmas: Sequence[str], convs: list[dict[str, Any]], msgs: list[dict[str, Any]]
) -> None:
    """W2: ``create_conversation`` per conversation, then ``import_messages``; one session."""
    with get_session(path) as s:
        ids = [
            create_conversation(s, user_id=c["user_id"], title=c["title"], status=c["status"]).id
            for c in convs
        ]
        import_messages(
            s,
            (
                {
                    "conversation_id": ids[m["conversation"]],
                    "role": m["role"],
                    "content": m["content"],
                    "created_at": m["created_at"],
                }
                for m in msgs
            ),
        )


def _latest(s: Any, cid: int, limit: int) -> list[Any]:
    return list_messages_for_conversation(s, cid, limit=limit, latest=True)


def open_conversation(
    path: Path, pragmas: Sequence[str], conv_ids: Sequence[int], limit: int = 50
) -> list[float]:
    """W3: the latest ``limit`` messages, oldest first, one session per read."""
    clock = time.perf_counter
    out = []
    for cid in conv_ids:
        t0 = clock()
        with get_session(path) as s:
            _latest(s, cid, limit)
        out.append(clock() - t0)
    return out


def list_conversations(
    path: Path, pragmas: Sequence[str], user_ids: Sequence[int], limit: int = 20
) -> list[float]:
    """W4: a user's most recently updated conversations, one session per read."""
    clock = time.perf_counter
    out = []
    for uid in user_ids:
        t0 = clock()
        with get_session(path) as s:
            list_conversations_for_user(s, uid, limit=limit)
        out.append(clock() - t0)
    return out


# -- run in a child process (W6, W7) -------------------------------------------
def cold_read(path: str, pragmas: Sequence[str], conv_id: int) -> int:
    with get_session(path) as s:
        return len(_latest(s, conv_id, 50))


def export(path: str, pragmas: Sequence[str], fp: IO[str]) -> int:
    """W7: ``export_messages_jsonl``."""
    with get_session(path) as s:
        return export_messages_jsonl(s, fp)
