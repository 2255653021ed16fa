"""What the chat app asks the store, timed on a big store: opening it, the sidebar, a switch.

    $ python -m benchmarks.big_store --out /tmp/big.db              # once: 1M messages
    $ python -m benchmarks.bench_app_queries --store /tmp/big.db
    $ python -m benchmarks.bench_app_queries --conversations 50 --messages 2000   # a small one

* **cold open**: a new Python process imports localchat, opens the store, runs
  ``mark_interrupted_replies`` (what the app does at start-up) and reads the first
  sidebar page (``list_conversations_for_user(s, user, pinned_first=True,
  limit=200)`` in a read session). Reported: the time inside the process (import
  to page) and the process's whole wall time (interpreter start-up included),
  median and max of ``--opens`` runs. The OS file cache is warm (the store was
  just built or read); a first open after a reboot also reads the file from disk.
* **sidebar** (in one process, store open): the first page, the page filtered by
  a tag, by title text (``title_contains``), a full-text search
  (``search_conversations``: titles and messages), the trash (``list_trash``) and
  ``list_all_conversations(pinned_first=True)``: median, p95 and max of ``--runs``.
* **switch** to a conversation: one read session doing what the window shows:
  ``get_conversation_by_id``, the current branch's last ``--window`` messages
  (``list_messages_for_conversation(..., latest=True)``), ``list_versions`` for
  every shown message that has siblings (found by one query over the shown
  messages' parents, as an app would batch it) and the conversation's documents
  (``list_documents``). Over ``--switches`` random conversations plus the five
  largest; median, p95 and max, with the raw sqlite3 equivalent (same SQL
  shapes, no ORM) on the same store.
Targets: first page < 1 s in a new process; a switch < 100 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .report import summarize

__all__ = ["measure", "main"]

_COLD = r"""
import json, sys, time
t0 = time.perf_counter()
from localchat import open_store
from localchat.repository import list_conversations_for_user, mark_interrupted_replies
store = open_store(sys.argv[1])
t1 = time.perf_counter()
with store.session() as s:
    mark_interrupted_replies(s)
t2 = time.perf_counter()
with store.read_session() as s:
    page = list_conversations_for_user(s, 1, pinned_first=True, limit=200)
    titles = [c.title for c in page]
t3 = time.perf_counter()
store.close()
print(json.dumps({"open": t1 - t0, "interrupted": t2 - t1, "page": t3 - t2, "total": t3 - t0,
                  "rows": len(titles)}))
"""


def _cold(path: Path, runs: int) -> dict[str, Any]:
    inside, wall, parts = [], [], []
    for _ in range(runs):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _COLD, str(path)], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
        wall.append(time.perf_counter() - started)
        found = json.loads(out)
        inside.append(found["total"])
        parts.append(found)
    return {"inside": summarize(inside), "wall": summarize(wall), "max_inside": max(inside) * 1e3,
            "max_wall": max(wall) * 1e3, "last": parts[-1]}  # fmt: skip


def _timed(fn: Any, runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    out = summarize(samples)
    out["max"] = max(samples) * 1e3
    return out


def _words(store: Any) -> str:
    """A word of some conversation's title (what a user would type in the filter)."""
    with store.read_session() as s:
        title = s.db.execute_sql('SELECT "title" FROM "conversation" WHERE "id" = 1').fetchone()
    return str(title[0]).split()[0]


def _sidebar(store: Any, runs: int) -> dict[str, dict[str, float]]:
    from localchat.repository import (
        list_all_conversations,
        list_conversations_for_user,
        list_trash,
    )
    from localchat.search import search_conversations

    word = _words(store)

    def page(**kw: Any) -> Any:
        def run() -> None:
            with store.read_session() as s:
                rows = list_conversations_for_user(s, 1, pinned_first=True, limit=200, **kw)
                assert rows or kw

        return run  # fmt: skip

    def search() -> None:
        with store.read_session() as s:
            search_conversations(s, word, user_id=1, limit=200)

    def everyone() -> None:
        with store.read_session() as s:
            list_all_conversations(s, pinned_first=True, limit=200)

    def trash() -> None:
        with store.read_session() as s:
            list_trash(s, user_id=1)

    return {
        "first page (pinned first, 200)": _timed(page(), runs),
        "filtered by tag": _timed(page(tag="travel"), runs),
        f"filtered by title text (title_contains={word[:4]!r})": _timed(
            page(title_contains=word[:4]), runs
        ),
        f"full-text search, titles and messages ({word!r})": _timed(search, runs),
        "trash": _timed(trash, runs),
        "every user's, pinned first (list_all_conversations)": _timed(everyone, runs),
    }


def _switch_ids(db_path: Path, switches: int) -> list[int]:
    conn = sqlite3.connect(str(db_path))
    ids = [r[0] for r in conn.execute('SELECT "id" FROM "conversation" WHERE "trashed_at" IS NULL')]
    largest = [r[0] for r in conn.execute(
        'SELECT "conversation_id" FROM "message" GROUP BY "conversation_id" '
        'ORDER BY count(*) DESC LIMIT 5')]  # fmt: skip
    conn.close()
    rng = random.Random(7)
    return rng.sample(ids, min(switches, len(ids))) + largest


def _switch_localchat(store: Any, window: int) -> Any:
    from localchat.repository import (
        get_conversation_by_id,
        list_documents,
        list_messages_for_conversation,
        list_versions,
    )

    def switch(cid: int) -> int:
        with store.read_session() as s:
            conv = get_conversation_by_id(s, cid)
            shown = list_messages_for_conversation(s, conv.id, limit=window, latest=True)
            versions = [list_versions(s, m.id) for m in _with_siblings(s.db, shown)]
            list_documents(s, conversation_id=conv.id)
        return len(versions)

    return switch


def _with_siblings(db: Any, shown: list[Any]) -> list[Any]:
    """The shown messages that have siblings: one query over their parents."""
    parents = {m.parent_id for m in shown if m.parent_id is not None}
    if not parents:
        return []
    marks = ", ".join("?" * len(parents))
    sql = (f'SELECT "parent_id" FROM "message" WHERE "parent_id" IN ({marks}) '
           'GROUP BY "parent_id" HAVING count(*) > 1')  # fmt: skip
    many = {r[0] for r in db.execute_sql(sql, list(parents))}
    return [m for m in shown if m.parent_id in many]


_RAW_BRANCH = (
    "WITH RECURSIVE t(id, parent_id, depth) AS ("
    "SELECT id, parent_id, 0 FROM message WHERE id = COALESCE((SELECT k.id FROM message k, "
    "conversation c WHERE c.id = ? AND k.id = c.current_leaf_id AND k.conversation_id = c.id), "
    "(SELECT x.id FROM message x WHERE x.conversation_id = ? ORDER BY x.created_at DESC, "
    "x.id DESC LIMIT 1)) UNION ALL SELECT m.id, m.parent_id, t.depth + 1 FROM message m "
    "JOIN t ON m.id = t.parent_id WHERE t.depth + 1 < ?) "
    "SELECT m.* FROM message m JOIN t ON m.id = t.id ORDER BY t.depth DESC"
)


def _switch_raw(db_path: Path, window: int) -> Any:
    conn = sqlite3.connect(str(db_path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA query_only=1")

    def switch(cid: int) -> int:
        conn.execute("BEGIN")
        conn.execute("SELECT * FROM conversation WHERE id = ?", (cid,)).fetchone()
        shown = conn.execute(_RAW_BRANCH, (cid, cid, window)).fetchall()
        parents = {r[5] for r in shown if r[5] is not None}
        marks = ", ".join("?" * len(parents))
        many = {r[0] for r in conn.execute(
            f"SELECT parent_id FROM message WHERE parent_id IN ({marks}) "
            "GROUP BY parent_id HAVING count(*) > 1", list(parents))}  # fmt: skip
        for p in many:
            conn.execute("SELECT * FROM message WHERE parent_id = ? ORDER BY created_at, id",
                         (p,)).fetchall()  # fmt: skip
        conn.execute("SELECT * FROM document WHERE conversation_id = ? AND trashed_at IS NULL "
                     "ORDER BY created_at DESC, id DESC LIMIT 100", (cid,)).fetchall()  # fmt: skip
        conn.execute("COMMIT")
        return len(many)

    return switch


def _switches(fn: Any, ids: list[int]) -> dict[str, float]:
    for cid in ids[:5]:
        fn(cid)  # warm up
    samples, largest = [], []
    for i, cid in enumerate(ids):
        started = time.perf_counter()
        fn(cid)
        took = time.perf_counter() - started
        samples.append(took)
        if i >= len(ids) - 5:
            largest.append(took)
    out = summarize(samples)
    out["max"] = max(samples) * 1e3
    out["largest_max"] = max(largest) * 1e3
    return out


def _line(name: str, r: dict[str, float], unit_max: str = "max") -> str:
    return f"  {name:<50} median {r['median']:8.2f} ms   p95 {r['p95']:8.2f} ms   " + (
        f"max {r[unit_max]:8.2f} ms"
    )


def measure(
    store_path: Path, *, opens: int, runs: int, switches: int, window: int
) -> dict[str, Any]:
    """Every figure of the module docstring, for the store at ``store_path``."""
    from localchat import open_store

    cold = _cold(store_path, opens)
    store = open_store(store_path)
    try:
        sidebar = _sidebar(store, runs)
        ids = _switch_ids(store_path, switches)
        mine = _switches(_switch_localchat(store, window), ids)
    finally:
        store.close()
    raw = _switches(_switch_raw(store_path, window), ids)
    return {"cold": cold, "sidebar": sidebar, "switch": {"localchat": mine, "sqlite3": raw},
            "switches": len(ids)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_app_queries",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("--store", type=Path, help="an existing store (from benchmarks.big_store)")
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--opens", type=int, default=5, help="cold-open processes")
    parser.add_argument("--runs", type=int, default=50, help="runs of each sidebar query")
    parser.add_argument("--switches", type=int, default=200, help="random conversations")
    parser.add_argument("--window", type=int, default=50, help="messages shown on a switch")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.store
        if path is None:
            from .big_store import build_big_store

            path = build_big_store(Path(tmp) / "app.db", args.conversations, args.messages)
        result = measure(path, opens=args.opens, runs=args.runs, switches=args.switches,
                     window=args.window)  # fmt: skip
    cold = result["cold"]
    print(f"store: {path}")
    print("cold open, new process (import + open + mark_interrupted_replies + first page):")
    print(
        f"  inside the process  median {cold['inside']['median']:8.1f} ms   "
        f"max {cold['max_inside']:8.1f} ms   ({cold['last']['rows']} rows; last run: "
        f"open {cold['last']['open'] * 1e3:.1f}, interrupted "
        f"{cold['last']['interrupted'] * 1e3:.1f}, page {cold['last']['page'] * 1e3:.1f} ms)"
    )
    print(f"  process wall time   median {cold['wall']['median']:8.1f} ms   "
          f"max {cold['max_wall']:8.1f} ms")  # fmt: skip
    print("sidebar (store open):")
    for name, r in result["sidebar"].items():
        print(_line(name, r))
    print(f"switch to a conversation ({result['switches']} conversations, the 5 largest last, "
          f"window {args.window}):")  # fmt: skip
    for impl, r in result["switch"].items():
        print(_line(impl, r) + f"   largest: max {r['largest_max']:.2f} ms")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
