"""How long doctor (without hashing) and stats by day over a year take on a big store.

    $ python -m benchmarks.bench_maintenance                       # 100,000 messages
    $ python -m benchmarks.bench_maintenance --messages 1000000 --keep /tmp/big.db --prune

The store is made with localchat (schema, triggers), then filled with raw
sqlite3 inserts (the FTS5 and bump triggers fire as for the app): 50 messages
per conversation, every other one an assistant reply with a response, spread
over the last 365 days, three models. Timed: ``check_store(store)`` (quick_check,
foreign_key_check, every index against its table, file sizes, WAL, free pages)
and ``store_stats(s, by="day", since=<a year ago>)``. Targets (issue 15) at
1,000,000 messages: doctor < 10 s, stats < 500 ms. ``--prune`` then deletes the
oldest 10% of conversations, 200 per transaction, while a thread adds a message
every 10 ms, and reports the longest write (busy_timeout: 30 s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path

from localchat import local_session, open_store
from localchat.maintenance import check_store, prune, store_stats
from localchat.models import Conversation
from localchat.repository import add_message

MODELS = ("llama3", "mistral", "qwen2")


def build(path: Path, messages: int, per_conversation: int = 50) -> None:
    with local_session(path):
        pass
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO user (uuid, email, is_active, created_at, updated_at) VALUES (?, ?, 1, ?, ?)",
        (uuid.uuid4().hex, "bench@example.org", "2025-01-01 00:00:00", "2025-01-01 00:00:00"),
    )
    start = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=365)
    step = dt.timedelta(days=365) / max(messages, 1)
    n = 0
    conv_id = 0
    while n < messages:
        at = (start + step * n).isoformat(" ")
        conv = conn.execute(
            "INSERT INTO conversation (uuid, user_id, title, status, created_at, updated_at) "
            "VALUES (?, 1, ?, 'active', ?, ?)",
            (uuid.uuid4().hex, f"conversation {conv_id}", at, at),
        )
        conv_id = conv.lastrowid
        parent = None
        for i in range(min(per_conversation, messages - n)):
            at = (start + step * n).isoformat(" ")
            role = "user" if i % 2 == 0 else "assistant"
            model = MODELS[n % 3] if role == "assistant" else None
            cur = conn.execute(
                "INSERT INTO message (uuid, conversation_id, parent_id, role, content, model, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (uuid.uuid4().hex, conv_id, parent, role,
                 f"message {n} about engines and looms number {n % 997}", model, at, at),
            )  # fmt: skip
            parent = cur.lastrowid
            if role == "assistant":
                conn.execute(
                    "INSERT INTO response (message_id, model_used, tokens_prompt, "
                    "tokens_completion, tokens_total, completion_time_ms, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (parent, model, 100, 200 + n % 50, 300 + n % 50, 500 + n % 900, at),
                )
            n += 1
    conn.execute(  # the bump trigger stamps "now": spread them as the messages are
        "UPDATE conversation SET updated_at = (SELECT max(m.created_at) FROM message m "
        "WHERE m.conversation_id = conversation.id)"
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def prune_with_writer(path: Path, share: float = 0.10, batch: int = 200) -> None:
    """Prune the oldest ``share`` of conversations in batches while a thread keeps writing."""
    store = open_store(path)
    with store.read_session() as s:
        total = Conversation.select().count()
        oldest = (
            Conversation.select(Conversation.updated_at)
            .order_by(Conversation.updated_at, Conversation.id)
            .offset(int(total * share))
            .limit(1)
        )
        nth = list(oldest)[0].updated_at  # (get() would drop the offset)
        target = Conversation.select(Conversation.id).order_by(Conversation.id.desc()).get().id
    stop = threading.Event()
    waits: list[float] = []

    def writer() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            with store.session() as s:
                add_message(s, target, "user", "written during the prune")
            waits.append(time.perf_counter() - t0)
            time.sleep(0.01)

    thread = threading.Thread(target=writer)
    thread.start()
    t0 = time.perf_counter()
    pruned = 0
    try:
        while True:
            with store.session() as s:
                step = prune(s, older_than=nth, dry_run=False, limit=batch)
            pruned += step.conversations
            if step.conversations < batch:
                break
    finally:
        stop.set()
        thread.join()
    took = time.perf_counter() - t0
    print(f"prune {pruned} of {total} conversations ({share:.0%}) in batches of {batch}: "
          f"{took:.1f} s; concurrent writer: {len(waits)} writes, longest "
          f"{max(waits) * 1000:.0f} ms")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--keep", metavar="PATH", help="build (or reuse) the store at PATH")
    parser.add_argument("--prune", action="store_true", help="then prune 10%% with a writer")
    args = parser.parse_args(argv)
    path = Path(args.keep) if args.keep else Path(tempfile.mkdtemp()) / "bench.db"
    if not path.exists():
        t0 = time.perf_counter()
        build(path, args.messages)
        print(f"built {args.messages} messages in {time.perf_counter() - t0:.1f} s: {path}")
    store = open_store(path)
    t0 = time.perf_counter()
    report = check_store(store)
    doctor_s = time.perf_counter() - t0
    print(f"doctor (no hashing): {doctor_s:.2f} s, exit code {report.exit_code}")
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=366)
    times = []
    for _ in range(3):
        with store.read_session() as s:
            t0 = time.perf_counter()
            stats = store_stats(s, by="day", since=since)
            times.append(time.perf_counter() - t0)
    done = stats.totals["responses"]["messages"]
    print(f"stats by day over a year: best of 3 {min(times) * 1000:.0f} ms, "
          f"{len(stats.responses)} rows, {done} responses")  # fmt: skip
    if args.prune:
        prune_with_writer(path)


if __name__ == "__main__":
    main()
