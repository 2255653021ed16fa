"""Conversations as Markdown for people: one file per conversation, its current branch.

    from localchat import open_store
    from localchat.portable import ExportFilter, export_markdown

    store = open_store("/tmp/example-md.db")
    store.upgrade()
    with store.read_session() as s:
        export_markdown(s, "/tmp/example-md")        # -> number of files written

Each file is ``<date>-<title>-<uuid prefix>.md``: the title, the dates and the
model, then every message of the current branch (root to leaf) under its role:
the branch a chat window shows, ending at the conversation's current leaf
(``get_current_leaf``: where the user last moved it; ChatGPT's ``current_node``
for an import; else the newest message). Messages marked hidden (``metadata["hidden"]``: ChatGPT's
hidden system and tool messages) and empty ones (placeholders) are left out. Files are written 0600.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..database import Session
from ..models import Conversation
from ..repository import get_current_leaf, get_thread
from .exporter import ExportFilter, conversation_where

__all__ = ["export_markdown", "conversation_markdown"]


def conversation_markdown(s: Session, conv: Conversation) -> str:
    """One conversation's current branch as Markdown text."""
    lines = [f"# {conv.title or '(untitled)'}", ""]
    lines.append(f"- created: {conv.created_at.isoformat()}")
    lines.append(f"- updated: {conv.updated_at.isoformat()}")
    if conv.default_model:
        lines.append(f"- model: {conv.default_model}")
    if conv.status != "active":
        lines.append(f"- status: {conv.status}")
    lines.append(f"- id: {conv.uuid}")
    leaf = get_current_leaf(s, conv.id)
    for message in get_thread(s, leaf.id) if leaf is not None else []:
        meta: Any = message.metadata
        if (isinstance(meta, dict) and meta.get("hidden") is True) or not message.content.strip():
            continue
        who = message.role + (f" ({message.model})" if message.model else "")
        lines += ["", f"## {who}", "", message.content]
    return "\n".join(lines) + "\n"


def _name(conv: Conversation) -> str:
    slug = re.sub(r"[^\w]+", "-", conv.title or "untitled", flags=re.UNICODE).strip("-")[:60]
    return f"{conv.created_at:%Y-%m-%d}-{slug or 'untitled'}-{conv.uuid.hex[:8]}.md"


def _conversations(s: Session, flt: ExportFilter) -> Iterator[Conversation]:
    where, params = conversation_where(s, flt)
    sql = f'SELECT c."id" FROM "conversation" c WHERE {where} ORDER BY c."id"'
    ids = [r[0] for r in s.db.execute_sql(sql, params).fetchall()]
    for start in range(0, len(ids), 500):
        yield from Conversation.select().where(Conversation.id.in_(ids[start : start + 500]))


def export_markdown(
    s: Session, folder: str | os.PathLike[str], flt: ExportFilter | None = None
) -> int:
    """Write one ``.md`` file per conversation into ``folder`` (made if missing); the count."""
    out = Path(folder)
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    n = 0
    for conv in _conversations(s, flt or ExportFilter()):
        target = out / _name(conv)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fp:
            fp.write(conversation_markdown(s, conv))
        n += 1
    return n
