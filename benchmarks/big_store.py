"""A big, realistic store for the chat app's speed runs: 1,000,000 messages in 10,000
conversations by default, built in about a minute.

    $ python -m benchmarks.big_store --out /tmp/big.db                  # 1M / 10k
    $ python -m benchmarks.big_store --out /tmp/small.db --conversations 50 --messages 2000

    from benchmarks.big_store import build_big_store
    build_big_store(Path("/tmp/big.db"), conversations=10_000, messages=1_000_000, users=1)

The schema is localchat's own (the store is created and migrated by
localchat); the rows go in with ``executemany`` on a plain sqlite3 connection
with the per-row triggers (full-text index, 0004/0008's bump) out of the way,
and the search index is built in one ``rebuild`` at the end, as the bulk
import does. What the triggers would have kept is written directly:
each conversation's ``updated_at`` and ``last_message`` follow its newest
message and ``current_leaf_id`` names the end of its branch, so the store
passes ``localchat doctor``.

What is in it (deterministic for a seed):

* conversations of very different lengths (log-normal; the largest holds about
  1% of all messages), starting over two years, their messages a few seconds
  to minutes apart; ids follow time across conversations, as in a real store;
* message trees: about 5% of the replies were regenerated (the old version,
  sometimes ``incomplete``, stays as a sibling) and 2% of the questions were
  edited (the old question and its answer stay as a dead branch); in about 1
  conversation in 10 with a dead branch the user flipped back to it (its leaf
  is the current leaf), so version switches exist;
* about 0.2% of the conversations pinned, 5% tagged (``work``, ``travel``,
  ``code``, ``family``), 5% archived and 1% in the trash; users own
  conversations in turn; a document (a small stored file) in the first
  ``documents`` conversations.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import json
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from .data import SEED, message_text, timestamp
from .impl_raw import preview

__all__ = ["build_big_store", "main"]

#: The newest conversation starts a little before this; the oldest two years earlier.
END = dt.datetime(2026, 11, 1)
SPAN_SECONDS = 2 * 365 * 86_400
TAGS = ("work", "travel", "code", "family")
MODELS = ("local/llama3", "echo", "local/qwen2.5")
_BATCH = 50_000

_MESSAGE_SQL = (
    'INSERT INTO "message" ("id", "uuid", "created_at", "updated_at", "conversation_id", '
    '"parent_id", "role", "content", "model", "status", "error") '
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_CONVERSATION_SQL = (
    'INSERT INTO "conversation" ("id", "uuid", "created_at", "updated_at", "user_id", "title", '
    '"status", "default_model", "last_message", "current_leaf_id", "pinned", "tags", '
    '"trashed_at") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'
)


def _sizes(rng: random.Random, conversations: int, messages: int) -> list[int]:
    """Messages per conversation: log-normal, the first conversation ~1% of all, sum exact."""
    if messages < 2 * conversations:
        raise ValueError(f"{messages} messages are too few for {conversations} conversations "
                         "(at least 2 each).")  # fmt: skip
    weights = [rng.lognormvariate(0, 1.0) for _ in range(conversations)]
    if conversations > 1:
        weights[0] = sum(weights) / 99  # the largest: ~1% of the messages
    total = sum(weights)
    spare = messages - 2 * conversations
    sizes = [2 + int(spare * w / total) for w in weights]
    for i in rng.choices(range(conversations), k=messages - sum(sizes)):
        sizes[i] += 1
    return sizes


# One planned message: time (s after the conversation's start), the index of its parent in
# its conversation (-1: a root), role, status.
_Plan = tuple[float, int, str, str]


def _plan(rng: random.Random, n: int) -> tuple[list[_Plan], int, int | None]:
    """``n`` messages of one conversation: (plan, index of the main tip, a dead leaf or None)."""
    out: list[_Plan] = []
    at = 0.0
    tip = -1
    dead: int | None = None

    def add(parent: int, role: str, status: str = "complete") -> int:
        nonlocal at
        at += rng.uniform(2, 300)
        out.append((at, parent, role, status))
        return len(out) - 1

    turn = 0
    while len(out) < n:
        left = n - len(out)
        role = "user" if turn % 2 == 0 else "assistant"
        if role == "assistant" and left >= 2 and rng.random() < 0.05:  # regenerated
            dead = add(tip, "assistant", "incomplete" if rng.random() < 0.3 else "complete")
        elif role == "user" and tip >= 0 and left >= 3 and rng.random() < 0.02:  # edited
            old = add(tip, "user")
            dead = add(old, "assistant")
        tip = add(tip, role)
        turn += 1
    return out, tip, dead


def _title(rng: random.Random, i: int) -> str:
    words = message_text(rng).rstrip(".").split()[: rng.randint(2, 5)]
    return " ".join(words).capitalize() + f" {i}"


def _messages(plans: list[list[_Plan]], starts: list[float]) -> Iterator[tuple[float, int, int]]:
    """(time, conversation index, message index) of every message, oldest first."""

    def one(c: int) -> Iterator[tuple[float, int, int]]:
        start = starts[c]
        for j, p in enumerate(plans[c]):
            yield (start + p[0], c, j)

    return heapq.merge(*(one(c) for c in range(len(plans))))


def _stamp(seconds: float) -> str:
    value = END - dt.timedelta(seconds=SPAN_SECONDS) + dt.timedelta(seconds=seconds)
    if not value.microsecond:
        value += dt.timedelta(microseconds=1)  # keep the text form uniform (.ffffff)
    return timestamp(value)


def build_big_store(
    path: Path | str,
    conversations: int = 10_000,
    messages: int = 1_000_000,
    users: int = 1,
    *,
    documents: int = 20,
    seed: int = SEED,
) -> Path:
    """Create the store at ``path`` (which must not exist) and fill it; returns ``path``."""
    from localchat import open_store

    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; pass a new path (or --force on the command line).")
    rng = random.Random(seed)
    store = open_store(path)
    store.upgrade()
    store.close()
    sizes = _sizes(rng, conversations, messages)
    plans = [_plan(rng, n) for n in sizes]
    starts = [rng.uniform(0, SPAN_SECONDS - 30 * 86_400) for _ in range(conversations)]
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")  # a build either finishes or is thrown away
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-200000")
    triggers = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
        "AND tbl_name IN ('message', 'conversation')"
    ).fetchall()
    conn.execute("BEGIN")
    for name, _ in triggers:
        conn.execute(f'DROP TRIGGER "{name}"')
    now = timestamp(END)
    conn.executemany(
        'INSERT INTO "user" ("id", "uuid", "created_at", "updated_at", "email", "name", '
        '"is_active") VALUES (?, ?, ?, ?, ?, ?, 1)',
        [(u, uuid.UUID(int=rng.getrandbits(128), version=4).hex, now, now,
          f"user{u}@example.org", f"User {u}") for u in range(1, users + 1)],
    )  # fmt: skip
    ids: list[list[int]] = [[0] * len(p[0]) for p in plans]
    newest: list[tuple[str, str]] = [("", "")] * conversations
    batch: list[tuple[object, ...]] = []
    next_id = 1
    for at, c, j in _messages([p[0] for p in plans], starts):
        _, parent, role, status = plans[c][0][j]
        ids[c][j] = next_id
        content = message_text(rng)
        stamp = _stamp(at)
        error = None
        if status == "incomplete":
            content = content[: len(content) // 2]
        model = MODELS[c % len(MODELS)] if role == "assistant" else None
        batch.append((next_id, uuid.UUID(int=rng.getrandbits(128), version=4).hex, stamp, stamp,
                      c + 1, ids[c][parent] if parent >= 0 else None, role, content, model,
                      status, error))  # fmt: skip
        newest[c] = (stamp, content)
        next_id += 1
        if len(batch) >= _BATCH:
            conn.executemany(_MESSAGE_SQL, batch)
            batch.clear()
    conn.executemany(_MESSAGE_SQL, batch)
    rows = []
    for c, (plan, tip, dead) in enumerate(plans):
        flipped = dead is not None and rng.random() < 0.1
        leaf = ids[c][dead if flipped and dead is not None else tip]
        created = _stamp(starts[c])
        # the second, third and fourth conversations: tagged, pinned and trashed in any store
        tags = None
        if c == 1:
            tags = json.dumps(["travel"])
        elif rng.random() < 0.05:
            tags = json.dumps(rng.sample(TAGS, rng.randint(1, 2)))
        trashed = _stamp(starts[c] + plan[-1][0] + 3600) if rng.random() < 0.01 or c == 3 else None
        pinned = rng.random() < 0.002 or c == 2
        rows.append((c + 1, uuid.UUID(int=rng.getrandbits(128), version=4).hex, created,
                     newest[c][0], c % users + 1, _title(rng, c + 1),
                     "archived" if rng.random() < 0.05 else "active", MODELS[c % len(MODELS)],
                     preview(newest[c][1]), leaf, int(pinned), tags,
                     trashed))  # fmt: skip
    conn.executemany(_CONVERSATION_SQL, rows)
    conn.execute("INSERT INTO message_fts(message_fts) VALUES ('rebuild')")
    conn.execute("INSERT INTO conversation_fts(conversation_fts) VALUES ('rebuild')")
    for _, sql in triggers:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    _add_documents(path, min(documents, conversations))
    return path


def _add_documents(path: Path, n: int) -> None:
    """One small stored file in each of the first ``n`` conversations (through localchat)."""
    from localchat import open_store
    from localchat.repository import create_document_with_file

    store = open_store(path)
    with tempfile.TemporaryDirectory() as tmp, store.session() as s:
        for c in range(1, n + 1):
            src = Path(tmp) / f"notes-{c}.txt"
            src.write_text(f"notes for conversation {c}\n" * 20)
            create_document_with_file(s, src, conversation_id=c, tags=["notes"])
    store.close()


def _remove(path: Path) -> None:
    import shutil

    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    shutil.rmtree(Path(str(path) + "-files"), ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.big_store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="the store to create")
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1)
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--force", action="store_true", help="replace an existing store at --out")
    args = parser.parse_args(argv)
    if args.force:
        _remove(args.out)
    started = time.perf_counter()
    try:
        build_big_store(args.out, args.conversations, args.messages, args.users,
                        documents=args.documents)  # fmt: skip
    except (FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    took = time.perf_counter() - started
    size = args.out.stat().st_size / 1e6
    print(f"{args.out}: {args.messages:,} messages in {args.conversations:,} conversations "
          f"({args.users} user(s)), {size:,.0f} MB, built in {took:.1f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
