"""The FTS5 index tables behind :mod:`localchat.search`, and how to keep them.

Migration 0002 creates three external-content FTS5 tables, each kept current
by ``AFTER INSERT`` / ``AFTER UPDATE OF <indexed columns>`` / ``AFTER DELETE``
triggers named ``<index>_ai``, ``<index>_au`` and ``<index>_ad``:

    message_fts          (content)          content='message'
    conversation_fts     (title)            content='conversation'
    knowledge_chunk_fts  (title, content)   content='knowledge_chunk'

A SQLite table rebuild (``alter_column_type``, ``add_column_default``, ...)
drops the rebuilt table's triggers; a migration that rebuilds one of these
tables wraps the rebuild in :func:`keep_triggers`::

    from localchat.search.index import keep_triggers

    def up(migrator, db):
        with keep_triggers(db, "message"):
            migrator.migrate(
                migrator.alter_column_type("message", "model", TextField(null=True))
            )

:func:`rebuild_search_index` re-reads every table into its index (a repair).
"""

from __future__ import annotations

import contextlib
import functools
import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import peewee
from playhouse.sqlite_ext import FTS5Model, SearchField

from ..checks import INT64_MAX, check_text
from ..database import Session
from ..errors import StoreError, Unsupported, ValidationError
from ..models import router
from ..operations import operation

__all__ = [
    "INDEX_TABLES",
    "MessageIndex",
    "ConversationIndex",
    "KnowledgeIndex",
    "MAX_QUERY_LENGTH",
    "MAX_QUERY_TERMS",
    "MIN_PREFIX",
    "MAX_PREFIX_TERMS",
    "SCORED_WORDS",
    "SCORED_SQL",
    "fts_query",
    "query_terms",
    "query_phrases",
    "check_horizon",
    "scored_rank",
    "score_of",
    "query_errors",
    "needs_fts",
    "check_index",
    "rebuild_search_index",
    "keep_triggers",
]

INDEX_TABLES = {
    "message_fts": "message",
    "conversation_fts": "conversation",
    "knowledge_chunk_fts": "knowledge_chunk",
}


class _Index(FTS5Model):
    class Meta:
        database = router


class MessageIndex(_Index):
    content = SearchField()

    class Meta:
        table_name = "message_fts"


class ConversationIndex(_Index):
    title = SearchField()

    class Meta:
        table_name = "conversation_fts"


class KnowledgeIndex(_Index):
    title = SearchField()
    content = SearchField()

    class Meta:
        table_name = "knowledge_chunk_fts"


#: Characters in a search query, at most.
MAX_QUERY_LENGTH = 1_000
#: Words (FTS5 tokens) in a search query, at most; operators do not count.
MAX_QUERY_TERMS = 32
#: UTF-8 bytes before an advanced query's ``*``, at least: ``abc*``, ``東*``.
MIN_PREFIX = 3
#: Prefix terms (``abc*``) in one advanced query, at most.
MAX_PREFIX_TERMS = 4

_TOKEN = re.compile(r"[^\W_]+")  # a run of letters and digits: one unicode61 token
_OPERATOR = re.compile(r"(?<![\w\"])(?:AND|OR|NOT|NEAR)(?![\w\"])")
# The phrases of an advanced query: quoted strings and bare words (with a
# prefix star), without operators, column filters and NEAR distances.
_QUOTED = re.compile(r'"(?:[^"]|"")*"\*?')
_COLUMN_FILTER = re.compile(r"-?(?:\{[^}]*\}|\w+)\s*:")
_NEAR_DISTANCE = re.compile(r",\s*\d+\s*\)")
_BARE = re.compile(r"[^\s\"():^+*,{}]+\*?")
_PREFIX = re.compile(r'("(?:[^"]|"")*"|[^\s"():^+*,{}]+)\*')


def fts_query(text: str, *, advanced: bool = False) -> str:
    """The FTS5 MATCH expression for ``text``; "" when it holds no word.

    A query longer than :data:`MAX_QUERY_LENGTH` characters or with more than
    :data:`MAX_QUERY_TERMS` words raises :class:`ValidationError`, and so does an
    advanced query with a prefix shorter than :data:`MIN_PREFIX` bytes or more
    than :data:`MAX_PREFIX_TERMS` prefixes: each would cost time and memory
    that grow with the store.

    >>> fts_query("C++ -O2 (NEAR: 😀")
    '"C++" "-O2" "(NEAR:"'
    """
    if not isinstance(text, str):
        raise ValidationError(f"a search query must be a string, got {type(text).__name__}.")
    if len(text) > MAX_QUERY_LENGTH:
        raise ValidationError(
            f"search query is {len(text):,} characters; the limit is {MAX_QUERY_LENGTH:,}."
        )
    if advanced:
        check_text("an advanced search query", text, allow_empty=True)
        _check_terms(query_terms(text))
        _check_prefixes(text)
        _check_repeats(text)
        return text.strip()
    text = text.encode("utf-8", "ignore").decode("utf-8")  # lone surrogates out
    words = [w for w in text.replace("\0", " ").split() if any(c.isalnum() for c in w)]
    first: dict[str, str] = {}
    for word in words:  # a word typed twice (any case, any accents) is searched once
        first.setdefault(_folded(word), word)
    words = list(first.values())
    _check_terms(query_terms(" ".join(words)))
    # Space-separated strings are FTS5's implicit AND.
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


def _folded(word: str) -> str:
    """``word`` as the tokenizer compares it, roughly: no case, no diacritics."""
    return "".join(
        c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c)
    ).casefold()


def query_phrases(expr: str) -> list[str]:
    """The phrases of an FTS5 expression as FTS5 strings: ``a OR "b c"`` -> ``"a"``, ``"b c"``."""
    phrases = _QUOTED.findall(expr)
    rest = _NEAR_DISTANCE.sub(")", _COLUMN_FILTER.sub(" ", _QUOTED.sub(" ", expr)))
    for word in _BARE.findall(rest):
        bare = word.rstrip("*")
        if bare not in ("AND", "OR", "NOT", "NEAR"):
            phrases.append('"' + bare.replace('"', '""') + '"' + word[len(bare) :])
    return phrases


def _check_repeats(expr: str) -> None:
    seen: set[str] = set()
    for phrase in query_phrases(expr):
        key = _folded(phrase)
        if key in seen:
            raise ValidationError(
                f"search query repeats {phrase}: each word may occur once "
                "(every repeat multiplies the work on rows full of that word)."
            )
        seen.add(key)


def query_terms(expr: str) -> int:
    """The words in a query or FTS5 expression, as the tokenizer counts them (no operators)."""
    return sum(1 for _ in _TOKEN.finditer(_OPERATOR.sub(" ", expr)))


def _check_terms(count: int) -> None:
    if count > MAX_QUERY_TERMS:
        raise ValidationError(
            f"search query has {count:,} words; at most {MAX_QUERY_TERMS} are searched "
            "(leave some out)."
        )


def _check_prefixes(text: str) -> None:
    prefixes = _PREFIX.findall(text)
    if len(prefixes) > MAX_PREFIX_TERMS:
        raise ValidationError(
            f"search query has {len(prefixes)} prefix words (word*); "
            f"at most {MAX_PREFIX_TERMS} are searched."
        )
    for prefix in prefixes:
        tokens = _TOKEN.findall(prefix)
        if not tokens or len(tokens[-1].encode("utf-8")) < MIN_PREFIX:
            raise ValidationError(
                f"search prefix {prefix + '*'!r} is too short: a prefix query needs at least "
                f"{MIN_PREFIX} letters before the * (one Chinese or Japanese character)."
            )


# -- ranking and paging ------------------------------------------------------------

#: Words in a row (a message, a title; a knowledge chunk's content) beyond which
#: bm25 does not score it: bm25 reads every match in the row, so its cost grows
#: with the row. Such a row gets score 0 and ranks after every scored match.
SCORED_WORDS = 16_383


def check_horizon(horizon: Any) -> int | None:
    """``horizon`` checked; None (rank all) when it exceeds any possible count of rows."""
    if horizon is None:
        return None
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValidationError(f"horizon must be a positive integer or None, got {horizon!r}.")
    return horizon if horizon <= INT64_MAX else None


#: Whether a row has at most SCORED_WORDS words, from FTS5's docsize table: each
#: row's word count per column as varints (1 byte below 128, 2 below 16,384).
SCORED_SQL = {
    1: "length(sz) <= 2",
    2: "length(sz) <= CASE WHEN substr(sz, 1, 1) < x'80' THEN 3"  # title < 128 words
    " WHEN substr(sz, 2, 1) < x'80' THEN 4 ELSE 0 END",  # title < 16,384 words
}


def score_of(rank: float) -> float:
    """The score shown for a rank: -bm25, and 0.0 (not -0.0) for an unscored row."""
    return -rank if rank else 0.0


def scored_rank(index: str, rowid: Any, bm25: Any) -> Any:
    """``bm25`` for rows of at most :data:`SCORED_WORDS` words, else 0 (ranked last)."""
    columns = 2 if index == "knowledge_chunk_fts" else 1
    scored = peewee.NodeList(
        (
            peewee.SQL(f"(SELECT {SCORED_SQL[columns]} FROM {index}_docsize WHERE id ="),
            rowid,
            peewee.SQL(")"),
        )
    )
    return peewee.Case(None, [(scored, bm25)], 0.0)


_FTS_ERRORS = ("fts5", "syntax error", "no such column", "unterminated", "unknown special query")


@contextlib.contextmanager
def query_errors(expr: str, advanced: bool) -> Iterator[None]:
    try:
        yield
    except peewee.OperationalError as exc:
        if advanced and any(part in str(exc) for part in _FTS_ERRORS):
            raise ValidationError(
                f"search query {expr!r} is not valid FTS5 syntax ({exc}); "
                "pass advanced=False to search for the words as typed."
            ) from exc
        raise


F = TypeVar("F", bound=Callable[..., Any])


def needs_fts(fn: F) -> F:
    """Refuse a backend or store without the FTS5 indexes, before touching it."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        s = args[0] if args else kwargs.get("session")  # fn checks it is a session
        db = getattr(s, "db", None)
        if db is not None and not isinstance(db, peewee.SqliteDatabase):
            raise Unsupported(
                f"full-text search needs SQLite FTS5; this store is {type(db).__name__} "
                "(PostgreSQL search is not implemented yet)."
            )
        try:
            return fn(*args, **kwargs)
        except (peewee.OperationalError, StoreError) as exc:  # StoreError: translated by operation
            missing = [t for t in INDEX_TABLES if f"no such table: {t}" in str(exc)]
            if missing:
                raise _no_index(missing[0]) from exc
            raise

    return wrapper  # type: ignore[return-value]


def _no_index(table: str) -> Unsupported:
    return Unsupported(
        f"this store has no full-text index {table!r}: its SQLite lacks FTS5, or "
        "migration 0002_full_text_search has not been applied."
    )


def check_index(table: str) -> None:
    """Raise :class:`Unsupported` unless the index ``table`` exists (one catalog query)."""
    if not router.table_exists(table):
        raise _no_index(table)


@needs_fts
@operation
def rebuild_search_index(s: Session) -> list[str]:
    """Re-read every indexed table into its index (repairs drift); returns the indexes."""
    done = []
    for index in INDEX_TABLES:
        check_index(index)
        s.db.execute_sql(f"INSERT INTO {index}({index}) VALUES ('rebuild')")
        done.append(index)
    return done


@contextlib.contextmanager
def keep_triggers(db: peewee.Database, *tables: str) -> Iterator[None]:
    """Recreate the triggers of ``tables`` that a table rebuild inside the block drops.

    For migrations (frozen: it restores the triggers the database had, whatever
    they were)::

        def up(migrator, db):
            with keep_triggers(db, "message"):
                migrator.migrate(
                    migrator.alter_column_type("message", "model", TextField(null=True))
                )

    A trigger on *another* table whose body names a rebuilt table (migration
    0004's ``message_bumps_conversation`` names ``conversation``) would make
    the rebuild fail (SQLite re-checks it when the new table is renamed into
    place): it is dropped before the block and recreated after it.

    The rebuild copies rows with their ids, so the indexes stay valid. It
    would also forget the largest id an ``AUTOINCREMENT`` table ever used (the
    new table's ``sqlite_sequence`` row starts at the largest id present, so a
    deleted newest row's id could come back): each table's sequence is put
    back after the block, never lowered. On PostgreSQL (no rebuilds) it does
    nothing.
    """
    if not isinstance(db, peewee.SqliteDatabase) or not tables:
        yield
        return
    names = re.compile(
        "|".join(rf'(?<![\w$"]){re.escape(t)}(?![\w$"])|"{re.escape(t)}"' for t in tables),
        re.IGNORECASE,
    )
    saved = []
    for name, table, sql in db.execute_sql(
        "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"
    ).fetchall():
        if table in tables:
            saved.append((name, sql))
        elif names.search(sql.split(" BEGIN", 1)[-1] if " BEGIN" in sql else sql):
            saved.append((name, sql))
            db.execute_sql(f'DROP TRIGGER "{name}"')
    sequences = _sequences(db, tables)
    yield
    present = {
        row[0] for row in db.execute_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    }
    for name, sql in saved:
        if name not in present:
            db.execute_sql(sql)
    _restore_sequences(db, sequences)


def _sequences(db: peewee.Database, tables: tuple[str, ...]) -> dict[str, int]:
    """``sqlite_sequence`` of ``tables``: the largest id each ever used (migration 0006)."""
    if not db.execute_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'"
    ).fetchone():
        return {}
    marks = ", ".join("?" * len(tables))
    sql = f"SELECT name, seq FROM sqlite_sequence WHERE name IN ({marks})"
    return {name: int(seq) for name, seq in db.execute_sql(sql, tables).fetchall()}


def _restore_sequences(db: peewee.Database, sequences: dict[str, int]) -> None:
    for table, seq in sequences.items():
        if not db.execute_sql(
            "UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?", (seq, table)
        ).rowcount:
            # An empty rebuilt table has no row yet; only AUTOINCREMENT tables get one.
            sql = db.execute_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            if sql and "AUTOINCREMENT" in sql[0].upper():
                db.execute_sql(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, seq)
                )
