"""Export a large store to localchat's JSONL format and import it into an empty one.

    $ python -m benchmarks.bench_portable                         # 100,000 messages
    $ python -m benchmarks.bench_portable --messages 1000000      # the issue's size

One store is built (``benchmarks.data``: conversations of 100 messages,
every other message a reply; plus a response on every tenth message, a
prompt, an LLM service and model, a knowledge chunk, an audit entry and a
stored document, so every exported table holds rows). Then, each in its own
process so the peak RSS (``VmHWM``) is that step's alone:

* **export**: ``export_store`` in a read session to a file;
* **import**: ``import_path`` of that file into a fresh migrated store, in one
  transaction, search index built before the commit;
* **sqlite3**: the floor: raw ``sqlite3`` ``executemany`` of the same
  conversation, message and response rows (read beforehand, not timed) into a
  fresh store with the message triggers dropped, then the full-text index
  built in one statement.

Reported: seconds, messages/s and peak RSS of each, the import/sqlite3 ratio,
and whether search over the imported store is complete (every message
indexed, the same hits as the source for a word).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import data
from benchmarks._child import _peak_rss_mb


def build(workdir: Path, messages: int) -> Path:
    template = data.make_template(workdir)
    per = 100
    path = data.build_store(
        template,
        workdir / "source.db",
        n_conversations=max(1, messages // per),
        per_conversation=per,
    )
    conn = data.connect_raw(path)
    conn.execute(
        "INSERT INTO response (message_id, model_used, tokens_prompt, tokens_completion, "
        "tokens_total, created_at) SELECT id, 'llama3', 10, 20, 30, created_at FROM message "
        "WHERE role = 'assistant' AND id % 10 = 0"
    )
    conn.close()
    from localchat import open_store
    from localchat.factories import Factories
    from localchat.repository import log_generation

    store = open_store(path)
    with store.session() as s:
        make = Factories(s)
        make.prompt()
        make.model()
        make.knowledge_chunk()
        make.document(content=b"x" * 100_000, filename="notes.txt")
        log_generation(s, "u1", "summary", {"a": 1}, {"b": 2})
    store.close()
    return path


def _child(argv: list[str]) -> None:
    from localchat import open_store
    from localchat.portable import export_store, import_path

    step, db, jsonl = argv
    t0 = time.perf_counter()
    store = open_store(db)
    if step == "export":
        with store.read_session() as s, open(jsonl, "w", encoding="utf-8") as fp:
            counts = export_store(s, fp)
    else:
        with store.session() as s:
            counts = import_path(s, jsonl, format="localchat").added
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "peak_rss_mb": _peak_rss_mb(), "counts": counts}))


def _run(step: str, db: Path, jsonl: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_portable", "--child", step, str(db), str(jsonl)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def raw_floor(source: Path, template: Path, target: Path) -> float:
    """Seconds raw sqlite3 takes to insert the same rows and index them in one statement."""
    src = sqlite3.connect(source)
    convs = src.execute(
        "SELECT id, uuid, created_at, updated_at, user_id, title, status, last_message "
        "FROM conversation"
    ).fetchall()
    msgs = src.execute(
        "SELECT id, uuid, created_at, updated_at, conversation_id, parent_id, role, content, "
        "model, metadata FROM message ORDER BY id"
    ).fetchall()
    resp = src.execute(
        "SELECT id, message_id, model_used, tokens_prompt, tokens_completion, tokens_total, "
        "created_at FROM response"
    ).fetchall()
    src.close()
    data.copy_template(template, target)
    conn = data.connect_raw(target)
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    conn.execute("DROP TRIGGER IF EXISTS message_fts_ai")
    conn.execute("DROP TRIGGER IF EXISTS message_bumps_conversation")
    conn.executemany(
        "INSERT INTO conversation (id, uuid, created_at, updated_at, user_id, title, status, "
        "last_message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        convs,
    )
    conn.executemany(
        "INSERT INTO message (id, uuid, created_at, updated_at, conversation_id, parent_id, "
        "role, content, model, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        msgs,
    )
    conn.executemany(
        "INSERT INTO response (id, message_id, model_used, tokens_prompt, tokens_completion, "
        "tokens_total, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        resp,
    )
    conn.execute("INSERT INTO message_fts(rowid, content) SELECT id, content FROM message")
    conn.execute("COMMIT")
    seconds = time.perf_counter() - t0
    conn.close()
    return seconds


def _search_complete(source: Path, target: Path) -> bool:
    counts = []
    for path in (source, target):
        conn = sqlite3.connect(path)
        indexed = conn.execute("SELECT count(*) FROM message_fts_docsize").fetchone()[0]
        total = conn.execute("SELECT count(*) FROM message").fetchone()[0]
        hits = conn.execute(
            "SELECT count(*) FROM message_fts WHERE message_fts MATCH 'ranon'"
        ).fetchone()[0]
        conn.close()
        counts.append((indexed == total, hits))
    return counts[0] == counts[1] and counts[1][0]


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--child"]:
        _child(args[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--workdir", help="keep the files here (default: a temporary folder)")
    opts = parser.parse_args(args)
    with tempfile.TemporaryDirectory(prefix="bench-portable-") as tmp:
        work = Path(opts.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        source = build(work, opts.messages)
        print(f"built {opts.messages:,} messages in {time.perf_counter() - t0:.0f} s", flush=True)
        jsonl = work / "export.jsonl"
        export = _run("export", source, jsonl)
        target = data.copy_template(work / "template.db", work / "target.db")
        imported = _run("import", target, jsonl)
        floor = raw_floor(source, work / "template.db", work / "raw.db")
        n = imported["counts"]["message"]
        rows = [
            ("export", export["seconds"], export["peak_rss_mb"]),
            ("import", imported["seconds"], imported["peak_rss_mb"]),
            ("sqlite3 floor", floor, float("nan")),
        ]
        print(f"messages: {n:,}; export file: {os.path.getsize(jsonl) / 1e6:,.0f} MB")
        for name, seconds, rss in rows:
            print(
                f"{name:<14} {seconds:8.1f} s {n / seconds:10,.0f} msg/s   peak RSS {rss:6.1f} MB"
            )
        print(f"import / sqlite3 floor: {imported['seconds'] / floor:.2f}x")
        print(f"search complete after import: {_search_complete(source, target)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
