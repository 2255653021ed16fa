"""Full-text search over messages, conversations and knowledge chunks (SQLite FTS5).

    from localchat import local_session
    from localchat.search import search_conversations, search_knowledge_chunks, search_messages

    with local_session() as s:
        for hit in search_messages(s, "munchen trip", user_id=1, limit=20):
            print(hit.score, hit.conversation.title, hit.snippet)  # "... the [München] [trip] ..."
        search_conversations(s, "invoice")          # one hit per conversation
        search_knowledge_chunks(s, "reset password", source="docs", limit=5)  # for a prompt

The indexes are made by migration 0002 and kept current by triggers, so every
write path (repository functions, bulk import, raw SQL) is searchable at once.
Plain text is a list of words, never query syntax (``advanced=True`` passes
FTS5 syntax through); every query is bounded. What a query means, the
tokenizer, ranking, bounded snippets, migrations that rebuild a table
(:func:`keep_triggers`) and the measurements: ``docs/search.md``. SQLite only:
on PostgreSQL the functions raise :class:`Unsupported`.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable
from typing import Any, TypeVar

import peewee

from ..checks import check_choice, check_search_page, check_text, id_of
from ..database import Session
from ..errors import ValidationError
from ..fastsql import fetch_models, statement
from ..models import (
    CONVERSATION_STATUSES,
    ROLES,
    Conversation,
    KnowledgeChunk,
    Message,
    User,
    router,
)
from ..operations import read_operation
from .hits import ConversationHit, KnowledgeHit, MessageHit
from .index import (
    SCORED_SQL,
    SCORED_WORDS,
    KnowledgeIndex,
    MessageIndex,
    check_horizon,
    fts_query,
    keep_triggers,
    needs_fts,
    query_errors,
    rebuild_search_index,
    score_of,
    scored_rank,
)
from .snippet import check_markers, highlights, snippets

__all__ = [
    "HORIZON",
    "SCORED_WORDS",
    "MessageHit",
    "ConversationHit",
    "KnowledgeHit",
    "fts_query",
    "search_messages",
    "search_conversations",
    "search_knowledge_chunks",
    "rebuild_search_index",
    "keep_triggers",
]

#: Matches ranked per query at most (newest first); see the module docstring.
HORIZON = 10_000

#: A title match counts this much more than the same match in a message.
TITLE_WEIGHT = 2.0
MARKERS = ("[", "]")
M = TypeVar("M", bound=peewee.Model)


# -- queries -----------------------------------------------------------------------


def _when(name: str, value: Any) -> Any:
    if value is not None and not isinstance(value, _dt.datetime):
        raise ValidationError(f"{name} must be a datetime, got {value!r}.")
    return value


def _any_trashed() -> bool:
    """Whether any conversation is in the trash (one probe of its index)."""
    trashed = Conversation.select(Conversation.id).where(Conversation.trashed_at.is_null(False))
    return bool(trashed.exists())


def _message_conditions(
    user_id: Any,
    conversation_id: Any,
    role: Any,
    since: Any,
    until: Any,
    include_trashed: bool = False,
) -> list[Any] | None:
    """WHERE terms for the filters; None when a filter names nothing that exists.

    Messages of trashed conversations are left out unless ``include_trashed``
    (no term at all while the trash is empty: the plain fast path stays).
    """
    conds: list[Any] = []
    if not include_trashed and _any_trashed():
        conds.append(Conversation.trashed_at.is_null())
    if user_id is not None:
        uid = id_of(User, user_id, "user_id")
        if uid is None:
            return None
        conds.append(Conversation.user == uid)
    if conversation_id is not None:
        cid = id_of(Conversation, conversation_id, "conversation_id")
        if cid is None:
            return None
        conds.append(Message.conversation == cid)
    if role is not None:
        conds.append(Message.role == check_choice("role", role, ROLES))
    if _when("since", since) is not None:
        conds.append(Message.created_at >= since)
    if _when("until", until) is not None:
        conds.append(Message.created_at < until)
    return conds


def _matches(expr: str, conds: list[Any]) -> peewee.ModelSelect:
    return (
        MessageIndex.select(MessageIndex.rowid)
        .join(Message, on=(Message.id == MessageIndex.rowid))
        .join(Conversation, on=(Conversation.id == Message.conversation))
        .where(MessageIndex.match(expr), *conds)
    )


_OLDEST = (
    "SELECT rowid FROM message_fts WHERE message_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?"
)


def _oldest(expr: str, conds: list[Any], horizon: int | None) -> int | None:
    """The smallest message id worth ranking: None when ``horizon`` matches or fewer."""
    if horizon is None:
        return None
    if not conds:  # the common case, as plain SQL: no joins, nothing to build
        row = router.execute_sql(_OLDEST, (expr, horizon - 1)).fetchone()
        return row[0] if row else None
    query = _matches(expr, conds).order_by(MessageIndex.rowid.desc()).limit(1)
    oldest: int | None = query.offset(horizon - 1).scalar()
    return oldest


@needs_fts
@read_operation
def search_messages(
    s: Session,
    query: str,
    *,
    user_id: int | str | User | None = None,
    conversation_id: int | str | Conversation | None = None,
    role: str | None = None,
    since: _dt.datetime | None = None,
    until: _dt.datetime | None = None,
    limit: int = 20,
    offset: int = 0,
    advanced: bool = False,
    horizon: int | None = HORIZON,
    markers: tuple[str, str] = MARKERS,
    include_trashed: bool = False,
) -> list[MessageHit]:
    """Messages matching ``query``, best first, each with its conversation and a snippet.

    ``since`` is inclusive and ``until`` exclusive (``created_at``). Messages of
    trashed conversations are left out unless ``include_trashed=True``.
    """
    expr = fts_query(query, advanced=advanced)
    marks = check_markers(markers)
    check_search_page(limit, offset)
    horizon = check_horizon(horizon)
    conds = _message_conditions(user_id, conversation_id, role, since, until, include_trashed)
    if not expr or conds is None:
        return []
    with query_errors(expr, advanced):
        oldest = _oldest(expr, conds, horizon)
        page = _page(expr, conds, oldest, limit, offset)
    messages = _load(s.db, Message, [p[0] for p in page])
    convs = _load(s.db, Conversation, {m.conversation_id for m in messages.values()})
    shown = [(messages[i], rank) for i, rank in page if i in messages]  # drift: skip
    texts = snippets([m.content for m, _ in shown], expr, marks, 16)
    hits = []
    for (m, rank), text in zip(shown, texts, strict=True):
        m.conversation = convs[m.conversation_id]
        hits.append(MessageHit(m, m.conversation, text, score_of(rank)))
    return hits


_PAGE = f"""
SELECT rowid,
       CASE WHEN (SELECT {SCORED_SQL[1]} FROM message_fts_docsize WHERE id = message_fts.rowid)
            THEN bm25(message_fts) ELSE 0.0 END AS r
  FROM message_fts WHERE message_fts MATCH ? AND rowid >= ?
 ORDER BY r, rowid DESC LIMIT ? OFFSET ?"""


def _page(
    expr: str, conds: list[Any], oldest: int | None, limit: int, offset: int
) -> list[tuple[int, float]]:
    """(id, rank) of the page's messages: ids only, so the sorter never holds a text."""
    if not conds:  # the common case, as plain SQL: no joins, nothing to build
        cursor = router.execute_sql(_PAGE, (expr, oldest or 0, limit, offset))
        return [(row[0], row[1]) for row in cursor]
    rank = scored_rank("message_fts", Message.id, MessageIndex.bm25())
    if oldest is not None:
        conds = [*conds, MessageIndex.rowid >= oldest]
    query = (
        Message.select(Message.id, rank)
        .join_from(Message, MessageIndex, on=(MessageIndex.rowid == Message.id))
        .join_from(Message, Conversation)
        .where(MessageIndex.match(expr), *conds)
        .order_by(rank, Message.id.desc())
    )
    rows: Iterable[Any] = query.limit(limit).offset(offset).tuples()
    return [(row[0], row[1]) for row in rows]


_ROWS = 'SELECT {{model}} FROM "{table}" WHERE "id" IN (SELECT value FROM json_each({{p}}))'


def _load(db: peewee.Database, model: type[M], ids: Iterable[int]) -> dict[int, M]:
    """The rows of ``model`` with ``ids``, by id (fixed SQL text: nothing to build)."""
    sql = statement(db, _ROWS.format(table=model._meta.table_name), model=model)
    rows = db.execute_sql(sql, (json.dumps(list(ids)),))
    return {row.get_id(): row for row in fetch_models(model, rows)}


_CONVERSATION_HITS = """
WITH hits(conversation_id, message_id, score) AS (
    SELECT rowid, NULL,
           CASE WHEN (SELECT {scored} FROM conversation_fts_docsize d
                       WHERE d.id = conversation_fts.rowid)
                THEN bm25(conversation_fts) * ? ELSE 0.0 END
      FROM conversation_fts WHERE conversation_fts MATCH ?
    UNION ALL
    SELECT m.conversation_id, m.id,
           CASE WHEN (SELECT {scored} FROM message_fts_docsize WHERE id = m.id)
                THEN bm25(message_fts) ELSE 0.0 END
      FROM message_fts JOIN message m ON m.id = message_fts.rowid
     WHERE message_fts MATCH ? AND message_fts.rowid >= ?
)
SELECT h.conversation_id, h.message_id, MIN(h.score) AS best
  FROM hits h JOIN conversation c ON c.id = h.conversation_id
 WHERE {where}
 GROUP BY h.conversation_id
 ORDER BY best, h.conversation_id DESC
 LIMIT ? OFFSET ?
"""


@needs_fts
@read_operation
def search_conversations(
    s: Session,
    query: str,
    *,
    user_id: int | str | User | None = None,
    status: str | None = None,
    limit: int = 20,
    offset: int = 0,
    advanced: bool = False,
    horizon: int | None = HORIZON,
    markers: tuple[str, str] = MARKERS,
    include_trashed: bool = False,
) -> list[ConversationHit]:
    """Conversations whose title or any message matches, best first, one hit each.

    Trashed conversations are left out unless ``include_trashed=True``.
    """
    expr = fts_query(query, advanced=advanced)
    marks = check_markers(markers)
    check_search_page(limit, offset)
    horizon = check_horizon(horizon)
    where: list[str] = ["1"]
    params: list[Any] = []
    conds = _message_conditions(user_id, None, None, None, None, include_trashed)
    if not expr or conds is None:
        return []
    if not include_trashed:
        where.append("c.trashed_at IS NULL")
    if user_id is not None:
        where.append("c.user_id = ?")
        params.append(id_of(User, user_id, "user_id"))
    if status is not None:
        where.append("c.status = ?")
        params.append(check_choice("status", status, CONVERSATION_STATUSES))
    with query_errors(expr, advanced):
        oldest = _oldest(expr, conds, horizon) or 0
        sql = _CONVERSATION_HITS.format(where=" AND ".join(where), scored=SCORED_SQL[1])
        args = [TITLE_WEIGHT, expr, expr, oldest, *params, limit, offset]
        found = s.db.execute_sql(sql, args).fetchall()
    return _conversation_hits(s.db, expr, found, marks)


def _conversation_hits(
    db: peewee.Database,
    expr: str,
    found: list[tuple[int, int | None, float]],
    marks: tuple[str, str],
) -> list[ConversationHit]:
    conv_ids = [row[0] for row in found]
    convs = _load(db, Conversation, conv_ids)
    msg_ids = [row[1] for row in found if row[1] is not None]
    messages = _load(db, Message, msg_ids)
    passages = snippets([messages[i].content for i in msg_ids], expr, marks, 16)
    by_title = [row[0] for row in found if row[1] is None]
    titles = highlights([convs[c].title or "" for c in by_title], expr, marks)
    snippet = dict(zip(msg_ids, passages, strict=True))
    title = dict(zip(by_title, titles, strict=True))
    return [
        ConversationHit(
            convs[conv_id],
            title[conv_id] if msg_id is None else snippet[msg_id],
            score_of(best),
            None if msg_id is None else messages[msg_id],
        )
        for conv_id, msg_id, best in found
    ]


@needs_fts
@read_operation
def search_knowledge_chunks(
    s: Session,
    query: str,
    *,
    source: str | None = None,
    limit: int = 5,
    advanced: bool = False,
    markers: tuple[str, str] = MARKERS,
) -> list[KnowledgeHit]:
    """Knowledge chunks for ``query``, best first (title matches weigh double): for RAG."""
    expr = fts_query(query, advanced=advanced)
    marks = check_markers(markers)
    check_search_page(limit, 0)
    if not expr:
        return []
    rank = scored_rank(
        "knowledge_chunk_fts", KnowledgeChunk.id, KnowledgeIndex.bm25(TITLE_WEIGHT, 1.0)
    )
    conds = [KnowledgeIndex.match(expr)]
    if source is not None:
        conds.append(KnowledgeChunk.source == check_text("source", source, allow_empty=True))
    with query_errors(expr, advanced):
        page: list[Any] = list(
            KnowledgeChunk.select(KnowledgeChunk.id, rank)
            .join(KnowledgeIndex, on=(KnowledgeIndex.rowid == KnowledgeChunk.id))
            .where(*conds)
            .order_by(rank, KnowledgeChunk.id)
            .limit(limit)
            .tuples()
        )
    chunks = _load(s.db, KnowledgeChunk, [p[0] for p in page])
    page = [p for p in page if p[0] in chunks]
    rows = [chunks[p[0]] for p in page]
    texts = snippets(
        [c.content for c in rows], expr, marks, 32, titles=[c.title or "" for c in rows]
    )
    return [
        KnowledgeHit(c, text, score_of(score))
        for c, text, (_, score) in zip(rows, texts, page, strict=True)
    ]


#: The earlier name (``docs/search.md`` before the names were settled): an alias
#: (see :mod:`localchat.compat`), not in ``__all__``.
search_knowledge = search_knowledge_chunks
