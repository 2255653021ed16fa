"""The physical limit: hand-written SQL on the standard library's ``sqlite3``.

One connection per process, localchat's pragmas, ``BEGIN IMMEDIATE`` per write
transaction, rows returned as plain tuples (no conversion at all).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["NAME", "connect", "append", "bulk_import", "open_conversation", "list_conversations"]

NAME = "sqlite3"

LATEST_MESSAGES = (
    "SELECT id, uuid, created_at, updated_at, conversation_id, parent_id, role, content, "
    "model, metadata FROM message WHERE conversation_id = ? "
    "ORDER BY created_at DESC, id DESC LIMIT ?"
)
RECENT_CONVERSATIONS = (
    "SELECT id, uuid, created_at, updated_at, user_id, external_id, title, status, "
    "default_model, last_message FROM conversation WHERE user_id = ? "
    "ORDER BY updated_at DESC, id DESC LIMIT ?"
)
_INSERT_MESSAGE = (
    "INSERT INTO message (uuid, created_at, updated_at, conversation_id, parent_id, role, content) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_BUMP = "UPDATE conversation SET updated_at = ?, last_message = ? WHERE id = ?"
_HAS_TRIGGER = (
    "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'message_bumps_conversation'"
)
_INSERT_CONVERSATION = (
    "INSERT INTO conversation (uuid, created_at, updated_at, user_id, title, status) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


def connect(path: Path | str, pragmas: Sequence[str]) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
    for pragma in pragmas:
        conn.execute(f"PRAGMA {pragma}")
    return conn


def preview(text: str) -> str:
    """The ``last_message`` preview: 200 characters at most, an ellipsis when cut."""
    return text if len(text) <= 200 else text[:199] + "\u2026"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def append(path: Path, pragmas: Sequence[str], plan: list[dict[str, Any]]) -> list[float]:
    """W1: per conversation, create it, then one transaction per message.

    On a schema with migration 0004's trigger (the INSERT moves the
    conversation) the UPDATE is left to it, as hand-written SQL on that schema
    would; without it, the UPDATE is explicit.
    """
    conn = connect(path, pragmas)
    by_trigger = conn.execute(_HAS_TRIGGER).fetchone() is not None
    latencies = []
    clock = time.perf_counter
    for conv in plan:
        now = _now()
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute(
            _INSERT_CONVERSATION,
            (uuid.uuid4().hex, now, now, conv["user_id"], conv["title"], "active"),
        )
        conn.execute("COMMIT")
        cid, parent = cur.lastrowid, None
        for role, content in conv["messages"]:
            t0 = clock()
            now = _now()
            conn.execute("BEGIN IMMEDIATE")
            parent = conn.execute(
                _INSERT_MESSAGE, (uuid.uuid4().hex, now, now, cid, parent, role, content)
            ).lastrowid
            if not by_trigger:
                conn.execute(_BUMP, (now, preview(content), cid))
            conn.execute("COMMIT")
            latencies.append(clock() - t0)
    conn.close()
    return latencies


def bulk_import(
    path: Path, pragmas: Sequence[str], convs: list[dict[str, Any]], msgs: list[dict[str, Any]]
) -> None:
    """W2: ``executemany`` inside one transaction."""
    conn = connect(path, pragmas)
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    conn.execute("BEGIN IMMEDIATE")
    ids = []
    for c in convs:
        at = c["created_at"].strftime(fmt)
        cur = conn.execute(
            _INSERT_CONVERSATION, (uuid.uuid4().hex, at, at, c["user_id"], c["title"], c["status"])
        )
        ids.append(cur.lastrowid)
    last: dict[int, tuple[str, str]] = {}
    parents: dict[int, int] = {}
    rows = []
    # Explicit ids (what SQLite would assign) so each message can name its parent.
    next_id = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM message").fetchone()[0]
    for m in msgs:
        at = m["created_at"].strftime(fmt)
        cid = ids[m["conversation"]]
        rows.append(
            (next_id, uuid.uuid4().hex, at, at, cid, parents.get(cid), m["role"], m["content"])
        )
        parents[cid] = next_id
        next_id += 1
        last[cid] = (at, m["content"])
    conn.executemany(
        "INSERT INTO message (id, uuid, created_at, updated_at, conversation_id, parent_id, "
        "role, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.executemany(_BUMP, [(at, preview(text), cid) for cid, (at, text) in last.items()])
    conn.execute("COMMIT")
    conn.close()


def _timed(conn: sqlite3.Connection, sql: str, keys: Sequence[int], limit: int) -> list[float]:
    clock = time.perf_counter
    out = []
    for key in keys:
        t0 = clock()
        rows = conn.execute(sql, (key, limit)).fetchall()
        rows.reverse()
        out.append(clock() - t0)
    return out


def open_conversation(
    path: Path, pragmas: Sequence[str], conv_ids: Sequence[int], limit: int = 50
) -> list[float]:
    """W3: the latest ``limit`` messages, oldest first."""
    conn = connect(path, pragmas)
    try:
        return _timed(conn, LATEST_MESSAGES, conv_ids, limit)
    finally:
        conn.close()


def list_conversations(
    path: Path, pragmas: Sequence[str], user_ids: Sequence[int], limit: int = 20
) -> list[float]:
    """W4: a user's most recently updated conversations."""
    conn = connect(path, pragmas)
    try:
        return _timed(conn, RECENT_CONVERSATIONS, user_ids, limit)
    finally:
        conn.close()


# -- run in a child process (W6, W7) -------------------------------------------
def cold_read(path: str, pragmas: Sequence[str], conv_id: int) -> int:
    conn = connect(path, pragmas)
    rows = conn.execute(LATEST_MESSAGES, (conv_id, 50)).fetchall()
    conn.close()
    return len(rows)


EXPORT = (
    "SELECT m.uuid, c.uuid, p.uuid, m.role, m.content, m.model, m.metadata, m.created_at "
    "FROM message m JOIN conversation c ON c.id = m.conversation_id "
    "LEFT JOIN message p ON p.id = m.parent_id ORDER BY m.id"
)


def export(path: str, pragmas: Sequence[str], fp: IO[str]) -> int:
    """W7: every message as one JSON object per line, streamed from the cursor."""
    conn = connect(path, pragmas)
    n = 0
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    write = fp.write
    for muid, cuid, parent, role, content, model, meta, created in conn.execute(EXPORT):
        write(
            dumps(
                {
                    "uuid": str(uuid.UUID(muid)),
                    "conversation": str(uuid.UUID(cuid)),
                    "parent": str(uuid.UUID(parent)) if parent is not None else None,
                    "role": role,
                    "content": content,
                    "model": model,
                    "metadata": json.loads(meta) if meta is not None else None,
                    "created_at": created.replace(" ", "T") + "+00:00",
                }
            )
        )
        write("\n")
        n += 1
    conn.close()
    return n
