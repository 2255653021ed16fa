"""Snippets and highlighted titles for search hits, built from a bounded window of text.

    >>> snippets(["Which museums should I visit in Munich?"], '"museum" "munich"', ("[", "]"), 16)
    ['Which [museums] should I visit in [Munich]?']
    >>> highlights(["Trip to München"], '"munchen"', ("<b>", "</b>"))
    ['Trip to <b>München</b>']

FTS5's own ``snippet()`` and ``highlight()`` take time quadratic in the
matches inside one row (a message holding one word 100,000 times took a
minute) and read the whole row. Here the same FTS5 functions run, with the
same tokenizer and the same query, on a private in-memory index that holds
only bounded windows of the page's hits, never on the store:

* a text of at most :data:`SNIPPET_WINDOW` characters and
  :data:`SNIPPET_WINDOW_TOKENS` words divided by the query's words (so that
  FTS5 never sees more than that many matches) is one window: its snippet is
  exactly the one FTS5 gives in place;
* a longer text is cut (at whitespace) into such windows, covering its first
  :data:`SNIPPET_SCAN` characters (fewer when a call has many hits: all of
  them together get :data:`SNIPPET_BUDGET`, but each at least one window);
  the snippet comes from the first window that matches the whole query, else
  from the first holding any of its words (those are marked), else it is the
  text's unmarked beginning. ``…`` marks text left out before or after;
* a title longer than one window is highlighted in its first window only.

So a hit costs at most :data:`SNIPPET_SCAN` characters of tokenizing and
FTS5 snippet work on at most one window, whatever the row holds.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Sequence
from itertools import islice
from typing import Any

from ..checks import check_text
from ..errors import ValidationError
from .index import query_phrases, query_terms

__all__ = [
    "SNIPPET_WINDOW",
    "SNIPPET_WINDOW_TOKENS",
    "SNIPPET_SCAN",
    "SNIPPET_BUDGET",
    "MAX_MARKER_LENGTH",
    "ELLIPSIS",
    "check_markers",
    "snippets",
    "highlights",
]

#: Characters of text one FTS5 snippet is computed from, at most.
SNIPPET_WINDOW = 2_000
#: Matches in one window, at most: FTS5's snippet costs their square. A window
#: holds this many words divided by the words in the query.
SNIPPET_WINDOW_TOKENS = 500
#: Characters of a long text searched for the window to show, at most.
SNIPPET_SCAN = 50_000
#: Characters searched for all the hits of one call together, at most (but one window each).
SNIPPET_BUDGET = 500_000
_BATCH = 250_000  # characters in the private index at once
#: Characters in one search marker, at most.
MAX_MARKER_LENGTH = 100
ELLIPSIS = "…"
#: Migration 0002's tokenizer: the windows are tokenized exactly as the store's index.
TOKENIZE = "porter unicode61 remove_diacritics 2"

_TOKEN = re.compile(r"[^\W_]+")  # a run of letters and digits: one unicode61 token
_OPTIONS = f"tokenize='{TOKENIZE}'"
_local = threading.local()


def check_markers(markers: Any) -> tuple[str, str]:
    """``markers`` as a pair of strings, or :class:`ValidationError` saying what is wrong."""
    if not isinstance(markers, (tuple, list)) or len(markers) != 2:
        raise ValidationError(f"markers must be two strings, got {markers!r:.80}.")
    for marker in markers:
        if not isinstance(marker, str):
            raise ValidationError(f"markers must be two strings, got {markers!r:.80}.")
        check_text("markers", marker, allow_empty=True, max_length=MAX_MARKER_LENGTH)
    return markers[0], markers[1]


def _scratch(columns: tuple[str, ...]) -> tuple[sqlite3.Connection, str]:
    """This thread's in-memory index with ``columns`` (empty: every use rolls back)."""
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = sqlite3.connect(":memory:", isolation_level=None)
        _local.tables = set()
    table = "w" + "".join(c[0] for c in columns)  # not "w_title": FTS5 owns "<table>_content"
    if table not in _local.tables:
        conn.execute(f"CREATE VIRTUAL TABLE {table} USING fts5({', '.join(columns)}, {_OPTIONS})")
        _local.tables.add(table)
    return conn, table


def _fill(conn: sqlite3.Connection, table: str, rows: list[tuple[Any, ...]]) -> None:
    marks = ", ".join("?" * len(rows[0]))
    conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)


def _end(text: str, start: int, tokens: int) -> int:
    """Where the window that begins at ``start`` ends: at whitespace, within the bounds."""
    end = min(len(text), start + SNIPPET_WINDOW)
    if end < len(text):
        floor = start + SNIPPET_WINDOW // 2
        cut = max(text.rfind(c, floor, end) for c in " \n\t")
        if cut > start:
            end = cut + 1
    last = next(islice(_TOKEN.finditer(text, start, end), tokens, None), None)
    return last.start() if last is not None else end


def _windows(text: str, scan: int, tokens: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    while start < min(len(text), scan) or not spans:
        end = _end(text, start, tokens)
        spans.append((start, end))
        start = end
    return spans


def _fallback(expr: str) -> str:
    """Any one word of ``expr``: OR of its phrases, without operators or filters."""
    return " OR ".join(dict.fromkeys(query_phrases(expr)))


def _start(text: str, tokens: int) -> str:
    """The unmarked beginning of ``text``: its first ``tokens`` words (from the first one)."""
    words = list(islice(_TOKEN.finditer(text, 0, min(len(text), SNIPPET_WINDOW)), tokens))
    if not words:
        return text[:SNIPPET_WINDOW].strip() + (ELLIPSIS if len(text) > SNIPPET_WINDOW else "")
    begin, end = words[0].start(), words[-1].end()
    return text[begin:end] + (ELLIPSIS if end < len(text) else "")


def _render(
    texts: Sequence[str],
    expr: str,
    call: str,
    args: tuple[Any, ...],
    columns: tuple[str, ...],
    titles: Sequence[str] | None,
    scan: int,
    tokens: int,
) -> list[str | None]:
    """``call`` (an FTS5 snippet/highlight of the last column) on each text's best window."""
    found: list[str | None] = [None] * len(texts)
    scan = min(scan, max(SNIPPET_WINDOW, SNIPPET_BUDGET // max(1, len(texts))))
    batch: list[tuple[int, int, int]] = []  # text, window start, window end
    size = 0
    for i, text in enumerate(texts):
        spans = _windows(text, scan, tokens)
        batch += [(i, start, end) for start, end in spans]
        size += spans[-1][1]
        if size >= _BATCH or i == len(texts) - 1:
            _render_batch(texts, titles, batch, expr, call, args, columns, found, tokens)
            batch, size = [], 0
    return found


def _render_batch(
    texts: Sequence[str],
    titles: Sequence[str] | None,
    batch: list[tuple[int, int, int]],
    expr: str,
    call: str,
    args: tuple[Any, ...],
    columns: tuple[str, ...],
    found: list[str | None],
    tokens: int,
) -> None:
    """Put ``batch``'s windows in the private index, then render each text's best one."""
    conn, table = _scratch(columns)
    rows: list[tuple[Any, ...]] = []
    for rowid, (i, start, end) in enumerate(batch, 1):
        if titles is None:
            rows.append((rowid, texts[i][start:end]))
        else:
            title = titles[i] or ""
            rows.append((rowid, title[: _end(title, 0, tokens)], texts[i][start:end]))
    function = call.format(table=table, column=len(columns) - 1)
    conn.execute("BEGIN")  # rolled back after: the windows never need deleting
    try:
        _fill(conn, f"{table}(rowid, {', '.join(columns)})", rows)
        for query in (expr, _fallback(expr)):
            try:
                done = _best_windows(conn, table, function, args, query, batch, found)
            except sqlite3.OperationalError:
                continue  # the fallback of an odd advanced query: leave the text unmarked
            for rowid, result in done:
                i, start, end = batch[rowid - 1]
                if start > 0 and not result.startswith(ELLIPSIS):
                    result = ELLIPSIS + result
                if end < len(texts[i]) and not result.endswith(ELLIPSIS):
                    result += ELLIPSIS
                found[i] = result
    finally:
        conn.execute("ROLLBACK")


def _best_windows(
    conn: sqlite3.Connection,
    table: str,
    function: str,
    args: tuple[Any, ...],
    query: str,
    batch: list[tuple[int, int, int]],
    found: list[str | None],
) -> list[tuple[int, str]]:
    """(rowid, rendered) of the first window matching ``query`` of each text not yet found."""
    chosen: dict[int, int] = {}  # text -> rowid
    for (rowid,) in conn.execute(f"SELECT rowid FROM {table} WHERE {table} MATCH ?", (query,)):
        i = batch[rowid - 1][0]
        if found[i] is None and i not in chosen:
            chosen[i] = rowid
    if not chosen:
        return []
    ids = ",".join(map(str, chosen.values()))
    sql = f"SELECT rowid, {function} FROM {table} WHERE {table} MATCH ? AND rowid IN ({ids})"
    return conn.execute(sql, (*args, query)).fetchall()


def snippets(
    texts: Sequence[str],
    expr: str,
    markers: tuple[str, str],
    tokens: int,
    *,
    titles: Sequence[str] | None = None,
) -> list[str]:
    """The passage of each text that matches the FTS5 query ``expr``, at most ``tokens`` words.

    With ``titles``, each text is the content of a (title, content) row and
    ``expr`` may match either column (knowledge chunks).
    """
    columns = ("content",) if titles is None else ("title", "content")
    call = "snippet({table}, {column}, ?, ?, ?, ?)"
    args = (*markers, ELLIPSIS, tokens)
    # FTS5's snippet costs the square of the matches in a window; a word the
    # query holds n times (or n words of one stem) matches each token n times.
    words = max(1, SNIPPET_WINDOW_TOKENS // max(1, query_terms(expr)))
    found = _render(texts, expr, call, args, columns, titles, SNIPPET_SCAN, words)
    return [f if f is not None else _start(t, tokens) for f, t in zip(found, texts, strict=True)]


def highlights(titles: Sequence[str], expr: str, markers: tuple[str, str]) -> list[str]:
    """Each title with the matches of ``expr`` marked (a long one: its first window)."""
    call = "highlight({table}, {column}, ?, ?)"
    found = _render(titles, expr, call, markers, ("title",), None, 1, SNIPPET_WINDOW_TOKENS)
    return [f if f is not None else _start(t, 64) for f, t in zip(found, titles, strict=True)]
