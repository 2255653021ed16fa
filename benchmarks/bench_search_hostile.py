"""Hostile rows and queries: the longest search and its peak memory, one process per search.

    python benchmarks/bench_search_hostile.py                     # 20,000 messages + hostile rows
    python benchmarks/bench_search_hostile.py --messages 1000000  # the issue's size
    python benchmarks/bench_search_hostile.py --code /path/to/old/checkout   # "before" figures

The store is the one ``bench_search.py`` builds (Zipf text, reused), copied
once and given hostile rows through raw ``sqlite3`` (the FTS triggers index
them as any writer would):

* a message holding one word 100,000 times; a 1 MB and a 50 MB message of one
  repeated word; 100 messages of 1 MB of ordinary (Zipf) text, so the most
  common words match them thousands of times each;
* 100 messages holding one word 16,000 times (just under the length past
  which bm25 no longer scores a row, so every one is scored);
* a conversation with a 1 MB title; a 5 MB knowledge chunk of one word and a
  1 MB one of Zipf text.

Each case is one search function call in a fresh child process
(``--child``), under a wall-clock timeout and an address-space limit, so a
runaway search is reported as such instead of taking the machine with it.
The child reports the call's wall time and the process's peak RSS (VmHWM,
the interpreter and imports included; ``idle`` is the peak before the call).
Target (issue 11): every case under 1 s and 100 MB. Results: printed, and
JSON under ``benchmarks/results/``. Not run by ``python -m benchmarks`` (no
``run(ctx)``): seeding the hostile rows takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["CASES", "build_hostile_store", "run_case", "main"]

_NOW = "2025-01-01 00:00:00"
MB = 1_000_000
REPEATED = "zyzzyva"  # 100,000 times in one message
ONE_MB_WORD = "quokka"  # a 1 MB message (and a 5 MB knowledge chunk) of it
FIFTY_MB_WORD = "axolotl"  # a 50 MB message of it
TITLE_WORD = "capybara"  # a 1 MB conversation title of it
HUGE_ZIPF_MESSAGES = 100  # 1 MB of ordinary text each
SCORED_WORD = "abalone"  # 16,000 times in each of 100 messages: just scored by bm25


def _repeat(word: str, size: int) -> str:
    return (word + " ") * (size // (len(word) + 1))


def _words() -> tuple[list[str], list[float]]:
    """bench_search's Zipf vocabulary (imported late: the child imports localchat first)."""
    sys.path.append(str(ROOT))
    from benchmarks.bench_search import _words as words

    return words()


def _zipf_text(size: int, rng: random.Random) -> str:
    words, cum = _words()
    parts: list[str] = []
    total = 0
    while total < size:
        chunk = " ".join(rng.choices(words, cum_weights=cum, k=1000))
        parts.append(chunk)
        total += len(chunk) + 1
    return " ".join(parts)[:size]


def build_hostile_store(base: Path, path: Path) -> Path:
    """A copy of ``base`` plus the hostile rows (built once, then reused)."""
    if path.exists():
        return path
    partial = path.with_name(path.name + ".partial")
    shutil.copyfile(base, partial)
    rng = random.Random(5)
    conn = sqlite3.connect(partial, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=normal")
    conv = conn.execute("SELECT max(id) FROM conversation").fetchone()[0] + 1
    conn.execute(
        "INSERT INTO conversation (id, uuid, created_at, updated_at, user_id, title, status)"
        " VALUES (?, ?, ?, ?, 1, ?, 'active')",
        (conv, uuid.uuid4().hex, _NOW, _NOW, _repeat(TITLE_WORD, MB)),
    )
    contents = [
        _repeat(REPEATED, 100_000 * (len(REPEATED) + 1)),
        _repeat(ONE_MB_WORD, MB),
        _repeat(FIFTY_MB_WORD, 50 * MB),
    ] + [_zipf_text(MB, rng) for _ in range(HUGE_ZIPF_MESSAGES)]
    contents += [_repeat(SCORED_WORD, 16_000 * (len(SCORED_WORD) + 1))] * 100
    for content in contents:  # one transaction each: FTS5 flushes per commit
        conn.execute(
            "INSERT INTO message (uuid, created_at, updated_at, conversation_id, role, content)"
            " VALUES (?, ?, ?, ?, 'user', ?)",
            (uuid.uuid4().hex, _NOW, _NOW, conv, content),
        )
    for ext, title, content in (
        ("hostile-1", ONE_MB_WORD, _repeat(ONE_MB_WORD, 5 * MB)),
        ("hostile-2", "zipf", _zipf_text(MB, rng)),
    ):
        conn.execute(
            "INSERT INTO knowledge_chunk (uuid, created_at, updated_at, source, external_id,"
            " title, content, chunk_metadata, content_hash) VALUES (?, ?, ?, 'bench', ?, ?, ?,"
            " '{}', ?)",
            (uuid.uuid4().hex, _NOW, _NOW, ext, title, content, uuid.uuid4().hex),
        )
    conn.execute("INSERT INTO message_fts(message_fts) VALUES ('optimize')")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    partial.rename(path)
    return path


def _common(rank: int) -> str:
    return _words()[0][rank]


def _vocabulary(n: int) -> list[str]:
    """The ``n`` most common words (repeated past the vocabulary's end)."""
    words = _words()[0]
    return [words[i % len(words)] for i in range(n)]


# (name, function, query builder, keyword arguments)
CASES: list[tuple[str, str, Any, dict[str, Any]]] = [
    ("word 100,000 times in one message", "search_messages", lambda: REPEATED, {}),
    ("1 MB message of one word", "search_messages", lambda: ONE_MB_WORD, {}),
    ("50 MB message of one word", "search_messages", lambda: FIFTY_MB_WORD, {}),
    ("most common word (100 x 1 MB rows match)", "search_messages", lambda: _common(0), {}),
    ("most common word, limit 100", "search_messages", lambda: _common(0), {"limit": 100}),
    ("common word, all ranked (horizon=None)", "search_messages", lambda: _common(3),
     {"horizon": None}),
    ("conversations: 1 MB title", "search_conversations", lambda: TITLE_WORD, {}),
    ("conversations: 50 MB message", "search_conversations", lambda: FIFTY_MB_WORD, {}),
    ("conversations: most common word", "search_conversations", lambda: _common(0), {}),
    ("knowledge: 5 MB chunk of one word", "search_knowledge", lambda: ONE_MB_WORD, {}),
    ("knowledge: common word", "search_knowledge", lambda: _common(0), {}),
    ("plain query of 100,000 words", "search_messages", lambda: " ".join(_vocabulary(100_000)),
     {}),
    ("plain query of 32 common words", "search_messages",
     lambda: " ".join(_vocabulary(32)), {}),
    ("advanced: 10,000 words OR-ed", "search_messages",
     lambda: " OR ".join(_vocabulary(10_000)), {"advanced": True}),
    ("advanced: 32 common words OR-ed", "search_messages",
     lambda: " OR ".join(_vocabulary(32)), {"advanced": True}),
    ("advanced: NEAR of 1,000 words", "search_messages",
     lambda: "NEAR(" + " ".join(_vocabulary(1_000)) + ", 10)", {"advanced": True}),
    ("advanced: prefix a*", "search_messages", lambda: "a*", {"advanced": True}),
    ("advanced: 26 prefixes OR-ed", "search_messages",
     lambda: " OR ".join(f"{c}*" for c in "abcdefghijklmnopqrstuvwxyz"), {"advanced": True}),
    ("advanced: 4 common 3-letter prefixes OR-ed", "search_messages",
     lambda: " OR ".join(w[:3] + "*" for w in _vocabulary(4)), {"advanced": True}),
    ("advanced: NEAR of 31 common words", "search_messages",
     lambda: "NEAR(" + " ".join(_vocabulary(31)) + ", 10)", {"advanced": True}),
    ("advanced: phrase of 32 common words", "search_messages",
     lambda: '"' + " ".join(_vocabulary(32)) + '"', {"advanced": True}),
    ("100 rows of one word 16,000 times", "search_messages", lambda: SCORED_WORD, {}),
    ("same, limit 100", "search_messages", lambda: SCORED_WORD, {"limit": 100}),
]  # fmt: skip


def _peak_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(db: str, index: int) -> int:
    """One case in this process; prints one JSON object."""
    name, fn_name, build, kwargs = CASES[index]
    query = build()
    from localchat import search
    from localchat.config import resolve
    from localchat.database import Store

    store = Store(resolve(db))
    store._migrated = True
    fn = getattr(search, fn_name)
    with store.session() as s:
        fn(s, "warmup")
    idle = _peak_mb()
    out: dict[str, Any] = {"idle_mb": idle}
    with store.session() as s:
        t0 = time.perf_counter()
        try:
            hits = fn(s, query, **kwargs)
            out["hits"] = len(hits)
            out["snippet_chars"] = max((len(h.snippet) for h in hits), default=0)
        except Exception as exc:  # reported, not raised: the case's outcome
            out["error"] = f"{type(exc).__name__}: {str(exc)[:120]}"
        out["seconds"] = time.perf_counter() - t0
    out["peak_mb"] = _peak_mb()
    store.close()
    print(json.dumps(out))
    return 0


def run_case(
    db: Path, index: int, code: Path | None, timeout: float, memory_mb: int
) -> dict[str, Any]:
    """Case ``index`` in a child process (localchat from ``code`` when given)."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)

    def limit() -> None:
        cap = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(db), str(index)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout, preexec_fn=limit
        )
    except subprocess.TimeoutExpired:
        return {"error": f"still running after {timeout:.0f} s (killed)", "seconds": None}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return {"error": tail[0][:160], "seconds": time.perf_counter() - t0}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return _child(argv[1], int(argv[2]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="base store size")
    parser.add_argument("--workdir", type=Path, help="where the stores are kept (default: temp)")
    parser.add_argument("--code", type=Path, help="import localchat from this source tree")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per case")
    parser.add_argument("--memory-mb", type=int, default=4096, help="address-space cap per case")
    parser.add_argument("--cases", help="comma-separated case numbers (default: all)")
    parser.add_argument("--label", default="", help="name of the results file")
    args = parser.parse_args(argv)
    sys.path.append(str(ROOT))
    from benchmarks.bench_search import build_store

    workdir = args.workdir or Path(tempfile.gettempdir()) / "localchat-bench-search"
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    base = build_store(workdir / f"search-{args.messages}.db", args.messages)
    db = build_hostile_store(base, workdir / f"search-hostile-{args.messages}.db")
    print(f"{args.messages:,} messages + hostile rows (ready in {time.perf_counter() - t0:.0f} s)")
    chosen = range(len(CASES))
    if args.cases:
        chosen = [int(c) for c in args.cases.split(",")]  # type: ignore[assignment]
    results = []
    for i in chosen:
        r = run_case(db, i, args.code, args.timeout, args.memory_mb)
        r.update(case=i, name=CASES[i][0])
        results.append(r)
        secs = "-" if r.get("seconds") is None else f"{r['seconds']:.3f} s"
        peak = f"{r['peak_mb']:.0f} MB (idle {r['idle_mb']:.0f})" if "peak_mb" in r else "-"
        what = r.get("error") or f"{r.get('hits')} hits"
        print(f"{i:>2} {CASES[i][0]:<44} {secs:>10} {peak:>20}  {what}", flush=True)
    done = [r for r in results if r.get("seconds") is not None and "peak_mb" in r]
    if done:
        print(
            f"longest {max(r['seconds'] for r in done):.3f} s, "
            f"highest peak {max(r['peak_mb'] for r in done):.0f} MB"
        )
    out = ROOT / "benchmarks" / "results" / f"search-hostile-{args.messages}{args.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
