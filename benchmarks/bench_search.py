"""Full-text search at scale: localchat.search against the same FTS5 SQL in raw sqlite3.

    python benchmarks/bench_search.py                    # 20,000 messages, seconds
    python benchmarks/bench_search.py --messages 1000000 # the issue's size (a few minutes)

Targets (issue 7), measured in one run on one store:

* S1: a one-word search (common and rare words alike) returns its first ranked
  page within 1.5x of the same FTS5 query written by hand against ``sqlite3``,
  and under 50 ms median;
* S2: appending a message with the FTS triggers costs no more than 1.3x the
  same append with the triggers dropped.

The store is migrated by localchat, then filled with raw ``executemany`` (the
triggers index every row as it goes in); it is kept under the work folder and
reused by later runs of the same size. Results: printed, and JSON under
``benchmarks/results/``. The common runner (``python -m benchmarks``) calls
:func:`run` like every ``bench_*.py`` module.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a source checkout
    sys.path.insert(0, str(ROOT))

from localchat.config import resolve  # noqa: E402
from localchat.database import Store  # noqa: E402
from localchat.repository import add_message  # noqa: E402
from localchat.search import HORIZON, search_messages  # noqa: E402

__all__ = ["build_store", "bench_search", "bench_append", "run", "main"]

VOCABULARY = 30_000
PER_CONVERSATION = 20
WORD_RANKS = (0, 3, 10, 100, 1_000, 10_000)  # by frequency: "the" ... a rare word
SIZES = {"tiny": 2_000, "quick": 100_000, "full": 1_000_000}
_NOW = "2025-01-01 00:00:00"


def _words() -> tuple[list[str], list[float]]:
    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    made = ("".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(VOCABULARY * 2))
    words = list(dict.fromkeys(made))[:VOCABULARY]
    return words, list(itertools.accumulate(1.0 / (r + 1) for r in range(len(words))))


def build_store(path: Path, n_messages: int) -> Path:
    """A migrated store holding ``n_messages`` Zipf-distributed messages (built once).

    A store kept from an earlier run is upgraded to the newest migration first.
    """
    if path.exists():
        kept = Store(resolve(path))
        kept.upgrade()
        kept.close()
        return path
    partial = path.with_name(path.name + ".partial")
    for leftover in path.parent.glob(partial.name + "*"):
        leftover.unlink()
    store = Store(resolve(partial))
    store.upgrade()
    store.close()
    words, cum = _words()
    rng = random.Random(11)
    n_conv = max(1, n_messages // PER_CONVERSATION)
    conn = sqlite3.connect(partial, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=normal")
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO user (id, uuid, created_at, updated_at, is_active) VALUES (1, ?, ?, ?, 1)",
        (uuid.uuid4().hex, _NOW, _NOW),
    )
    conn.executemany(
        "INSERT INTO conversation (id, uuid, created_at, updated_at, user_id, title, status) "
        "VALUES (?, ?, ?, ?, 1, ?, 'active')",
        (
            (i, uuid.uuid4().hex, _NOW, _NOW, " ".join(rng.choices(words, cum_weights=cum, k=4)))
            for i in range(1, n_conv + 1)
        ),
    )
    for start in range(0, n_messages, 50_000):
        conn.executemany(
            "INSERT INTO message (id, uuid, created_at, updated_at, conversation_id, role, content)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    i, uuid.uuid4().hex, _NOW, _NOW, (i - 1) // PER_CONVERSATION + 1,
                    "user" if i % 2 else "assistant",
                    " ".join(rng.choices(words, cum_weights=cum, k=rng.randint(5, 60))),
                )
                for i in range(start + 1, min(start + 50_000, n_messages) + 1)
            ],
        )  # fmt: skip
    conn.execute("COMMIT")
    conn.execute("INSERT INTO message_fts(message_fts) VALUES ('optimize')")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    partial.rename(path)
    return path


# The SQL localchat.search.search_messages runs, written by hand: the horizon
# probe, the ranked page of ids (from the index alone; a row of more than
# SCORED_WORDS words is not scored), the page's messages and conversations,
# then one snippet per hit (localchat makes its snippets from bounded windows
# in a private index; FTS5's own snippet() per row is the hand-written
# equivalent for rows this size).
RAW_OLDEST = """
SELECT rowid FROM message_fts WHERE message_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?"""
RAW_PAGE = """
SELECT rowid,
       CASE WHEN (SELECT length(sz) <= 2 FROM message_fts_docsize WHERE id = message_fts.rowid)
            THEN bm25(message_fts) ELSE 0.0 END AS r
  FROM message_fts WHERE message_fts MATCH ? AND rowid >= ?
 ORDER BY r, rowid DESC LIMIT 20"""
RAW_ROWS = """
SELECT m.*, c.* FROM message m JOIN conversation c ON c.id = m.conversation_id
 WHERE m.id IN ({ids})"""
RAW_SNIPPET = """
SELECT snippet(message_fts, 0, '[', ']', '…', 16) FROM message_fts
 WHERE message_fts MATCH ? AND rowid = ?"""
RAW_UNBOUNDED = """
SELECT m.*, c.*, snippet(message_fts, 0, '[', ']', '…', 16), bm25(message_fts) AS r
  FROM message m JOIN message_fts f ON f.rowid = m.id
  JOIN conversation c ON c.id = m.conversation_id
 WHERE message_fts MATCH ? ORDER BY r, m.id DESC LIMIT 20"""


def _raw_search(conn: sqlite3.Connection, word: str) -> list[Any]:
    term = f'"{word}"'
    oldest = conn.execute(RAW_OLDEST, (term, HORIZON - 1)).fetchone()
    page = conn.execute(RAW_PAGE, (term, oldest[0] if oldest else 0)).fetchall()
    ids = ",".join(str(row[0]) for row in page)
    rows = {row[0]: row for row in conn.execute(RAW_ROWS.format(ids=ids))}
    return [(*rows[i], conn.execute(RAW_SNIPPET, (term, i)).fetchone()[0]) for i, _ in page]


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - t0, result


def bench_search(path: Path, repeats: int = 7) -> dict[str, Any]:
    """Median ms per word: localchat vs the same SQL in sqlite3 (and without the horizon)."""
    words = _words()[0]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA cache_size=-16000")  # what localchat sets on its connections
    store = Store(resolve(path))
    store._migrated = True
    per_word: dict[str, Any] = {}
    lib_all: list[float] = []
    raw_all: list[float] = []
    with store.session() as s:
        for rank in WORD_RANKS:
            word = words[rank]
            lib, raw, full = [], [], []
            matches = conn.execute(
                "SELECT count(*) FROM message_fts WHERE message_fts MATCH ?", (f'"{word}"',)
            ).fetchone()[0]
            for _ in range(repeats):  # interleaved, so noise hits both alike
                t, hits = _timed(search_messages, s, word)
                lib.append(t)
                t, rows = _timed(_raw_search, conn, word)
                raw.append(t)
                assert [h.message.id for h in hits] == [r[0] for r in rows], word
            for _ in range(min(repeats, 3)):
                full.append(
                    _timed(lambda w=word: conn.execute(RAW_UNBOUNDED, (f'"{w}"',)).fetchall())[0]
                )
            lib_all += lib
            raw_all += raw
            per_word[word] = {
                "frequency_rank": rank,
                "matching_messages": matches,
                "localchat_ms": statistics.median(lib) * 1000,
                "sqlite3_ms": statistics.median(raw) * 1000,
                "ratio": statistics.median(lib) / statistics.median(raw),
                "sqlite3_unbounded_ms": statistics.median(full) * 1000,
            }
    store.close()
    conn.close()
    return {
        "words": per_word,
        "localchat_samples": lib_all,
        "sqlite3_samples": raw_all,
        "localchat_median_ms": statistics.median(lib_all) * 1000,
        "sqlite3_median_ms": statistics.median(raw_all) * 1000,
        "ratio": statistics.median(lib_all) / statistics.median(raw_all),
        # The whole set, one search per word: sum of per-word medians.
        "set_ratio": sum(w["localchat_ms"] for w in per_word.values())
        / sum(w["sqlite3_ms"] for w in per_word.values()),
        "worst_word_ratio": max(w["ratio"] for w in per_word.values()),
        "slowest_word_ms": max(w["localchat_ms"] for w in per_word.values()),
    }


_TRIGGERS = ("message_fts_ai", "message_fts_au", "message_fts_ad")


def _appends(store: Store, conv_id: int, n: int, rng: random.Random) -> list[float]:
    """``n`` appends, one session (transaction) each, then the rows removed again."""
    words, cum = _words()
    times, ids = [], []
    for _ in range(n):
        text = " ".join(rng.choices(words, cum_weights=cum, k=rng.randint(5, 60)))
        t0 = time.perf_counter()
        with store.session() as s:
            ids.append(add_message(s, conv_id, "user", text).id)
        times.append(time.perf_counter() - t0)
    with store.session() as s:
        s.db.execute_sql(f"DELETE FROM message WHERE id IN ({','.join(map(str, ids))})")
    return times


def bench_append(path: Path, rounds: int = 5, per_round: int = 60) -> dict[str, Any]:
    """Per-append seconds through ``add_message``, with vs without the FTS triggers."""
    store = Store(resolve(path))
    store._migrated = True
    with store.db.connection_context():
        saved = store.db.execute_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'message'"
        ).fetchall()
        conv_id = store.db.execute_sql("SELECT max(id) FROM conversation").fetchone()[0]
    rng = random.Random(3)
    with_t: list[float] = []
    without: list[float] = []
    try:
        for _ in range(rounds):
            with_t += _appends(store, conv_id, per_round, rng)
            with store.session() as s:  # deleted without triggers: the index never saw them
                for name in _TRIGGERS:
                    s.db.execute_sql(f"DROP TRIGGER {name}")
            without += _appends(store, conv_id, per_round, rng)
            with store.session() as s:
                for name, sql in saved:
                    if name in _TRIGGERS:
                        s.db.execute_sql(sql)
    finally:
        store.close()
    return {
        "with_triggers_samples": with_t,
        "without_triggers_samples": without,
        "with_triggers_ms": statistics.median(with_t) * 1000,
        "without_triggers_ms": statistics.median(without) * 1000,
        "ratio": statistics.median(with_t) / statistics.median(without),
    }


def _measure(workdir: Path, n_messages: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    path = build_store(workdir / f"search-{n_messages}.db", n_messages)
    built = time.perf_counter() - t0
    return {
        "messages": n_messages,
        "build_s": built,
        "search": bench_search(path),
        "append": bench_append(path),
        "sqlite": sqlite3.sqlite_version,
    }


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median": statistics.median(ordered) * 1000,
        "p95": ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)] * 1000,
        "n": len(ordered),
    }


def records(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The common runner's record shape (see ``benchmarks/report.py``)."""
    sr, ap, n = result["search"], result["append"], result["messages"]
    s_met = sr["set_ratio"] <= 1.5 and sr["localchat_median_ms"] < 50
    return [
        {
            "id": "S1",
            "name": f"search: first ranked page, one word ({n:,} messages)",
            "unit": "ms",
            "stat": "median",
            "values": {
                "sqlite3": _summary(sr["sqlite3_samples"]),
                "localchat": _summary(sr["localchat_samples"]),
            },
            "target": "the set within 1.5x sqlite3, median < 50 ms",
            "met": s_met,
            "figure": f"set {sr['set_ratio']:.2f}x, median {sr['localchat_median_ms']:.1f} ms; "
            f"worst word {sr['worst_word_ratio']:.2f}x, slowest {sr['slowest_word_ms']:.1f} ms",
            "note": "common and rare words; same FTS5 SQL by hand in sqlite3",
        },
        {
            "id": "S2",
            "name": f"append a message with vs without FTS triggers ({n:,} messages)",
            "unit": "ms",
            "stat": "median",
            "values": {
                "sqlite3": _summary(ap["without_triggers_samples"]),
                "localchat": _summary(ap["with_triggers_samples"]),
            },
            "target": "<= 1.3x the append without triggers",
            "met": ap["ratio"] <= 1.3,
            "figure": f"{ap['ratio']:.2f}x",
            "note": "both columns are add_message; 'sqlite3' = FTS triggers dropped",
        },
    ]


def run(ctx: Any) -> list[dict[str, Any]]:
    """Entry point for ``python -m benchmarks`` (tiny / quick / full sizes)."""
    n = SIZES.get(ctx.mode, SIZES["quick"])
    ctx.log(f"S1/S2 full-text search ({n:,} messages)")
    return records(_measure(Path(ctx.workdir), n))


def _print(result: dict[str, Any]) -> None:
    sr, ap = result["search"], result["append"]
    print(f"{result['messages']:,} messages (store built in {result['build_s']:.1f} s)")
    print(
        f"{'word':<12}{'matches':>10}{'localchat':>11}{'sqlite3':>10}{'ratio':>7}{'unbounded':>11}"
    )
    for word, w in sr["words"].items():
        print(
            f"{word:<12}{w['matching_messages']:>10,}{w['localchat_ms']:>9.2f}ms"
            f"{w['sqlite3_ms']:>8.2f}ms{w['ratio']:>7.2f}{w['sqlite3_unbounded_ms']:>9.1f}ms"
        )
    print(
        f"search median: localchat {sr['localchat_median_ms']:.2f} ms, "
        f"sqlite3 {sr['sqlite3_median_ms']:.2f} ms, ratio {sr['ratio']:.2f}, "
        f"whole set {sr['set_ratio']:.2f}x "
        f"(worst word {sr['worst_word_ratio']:.2f}, slowest word {sr['slowest_word_ms']:.1f} ms)"
    )
    print(
        f"append median: with triggers {ap['with_triggers_ms']:.3f} ms, "
        f"without {ap['without_triggers_ms']:.3f} ms, ratio {ap['ratio']:.2f}"
    )
    for r in records(result):
        print(
            f"{r['id']}: target {r['target']}: {'met' if r['met'] else 'NOT met'} ({r['figure']})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="store size (default 20000)")
    parser.add_argument("--workdir", type=Path, help="where the store is kept (default: temp)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.gettempdir()) / "localchat-bench-search"
    workdir.mkdir(parents=True, exist_ok=True)
    result = _measure(workdir, args.messages)
    _print(result)
    out = ROOT / "benchmarks" / "results" / f"search-{args.messages}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    slim = json.loads(json.dumps(result))
    for part in ("search", "append"):
        slim[part] = {k: v for k, v in slim[part].items() if not k.endswith("samples")}
    out.write_text(json.dumps(slim, indent=2) + "\n")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
