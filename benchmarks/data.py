"""Deterministic benchmark data and the stores it lives in.

Every implementation works on copies of one *template*: an empty store migrated
by localchat itself (so raw ``sqlite3`` and SQLAlchemy get exactly localchat's
tables, indexes and triggers) holding the same users. Read workloads use one
canonical populated store per size, built with ``executemany`` (not timed).

    from benchmarks.data import Sizes, make_template, build_store
    template = make_template(workdir)
    build_store(template, workdir / "100k.db", n_conversations=1_000, per_conversation=100)
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .impl_raw import preview

__all__ = [
    "N_USERS",
    "PRAGMAS",
    "Sizes",
    "SIZES",
    "ConversationRow",
    "MessageRow",
    "make_template",
    "copy_template",
    "build_store",
    "conversations",
    "messages",
    "message_text",
    "connect_raw",
    "preview",
    "timestamp",
]

#: Users in every store; conversations are spread evenly over them.
N_USERS = 10
#: Epoch of the generated history (conversations start within the year after).
EPOCH = dt.datetime(2025, 1, 1)
SEED = 20250101

# A small vocabulary with a Zipf-like frequency: real chat text has a few very
# common words and a long tail of rare ones (search benchmarks need both).
_WORDS = [
    f"{a}{b}"
    for a in ("ka", "lo", "mi", "re", "su", "to", "va", "ne", "pi", "do", "fa", "gu")
    for b in ("ran", "lek", "mor", "tis", "bun", "vel", "dro", "sam", "qui", "zet", "hol", "pex")
]
_WORDS += [w + s for w in _WORDS for s in ("a", "on", "ist", "ement", "ly", "ing", "ed")]
_CUM_WEIGHTS: list[float] = []
_total = 0.0
for _rank in range(len(_WORDS)):
    _total += 1.0 / (_rank + 1)
    _CUM_WEIGHTS.append(_total)


@dataclass(frozen=True)
class Sizes:
    """How much work each workload does in one benchmark mode."""

    w1_conversations: int
    w1_messages: int  # per conversation
    w2_conversations: int
    w2_messages: int  # in total
    reads: int  # W3/W4/W5 queries per implementation
    growth: int  # W5: data size factor over W2's
    w6_runs: int  # cold-start processes per implementation
    w7_messages: int
    w7_conversations: int


SIZES = {
    "full": Sizes(200, 50, 1_000, 100_000, 1_000, 10, 15, 1_000_000, 10_000),
    "quick": Sizes(50, 20, 200, 20_000, 300, 10, 5, 100_000, 1_000),
    "tiny": Sizes(3, 4, 5, 100, 10, 2, 1, 200, 5),
}


#: id, uuid, created_at, updated_at, user_id, title, status
ConversationRow = tuple[int, str, str, str, int, str, str]
#: uuid, created_at, updated_at, conversation_id, role, content
MessageRow = tuple[str, str, str, int, str, str]


def timestamp(value: dt.datetime) -> str:
    """The text form localchat stores (naive UTC, always with microseconds)."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


_STREAM: list[str] = []


def message_text(rng: random.Random) -> str:
    """A chat message of 4 to 80 words (a random window of a fixed word stream)."""
    if not _STREAM:
        _STREAM.extend(random.Random(SEED).choices(_WORDS, cum_weights=_CUM_WEIGHTS, k=1 << 18))
    n = rng.randint(4, 80)
    start = rng.randrange(len(_STREAM) - n)
    return " ".join(_STREAM[start : start + n]).capitalize() + "."


def _conversation_start(rng: random.Random) -> dt.datetime:
    return EPOCH + dt.timedelta(seconds=rng.randrange(365 * 86_400), microseconds=1)


def conversations(n: int, *, first_id: int = 1, seed: int = SEED) -> list[ConversationRow]:
    """``n`` conversations, evenly spread over the users; one in ten archived."""
    rng = random.Random(seed)
    rows = []
    for i in range(first_id, first_id + n):
        start = _conversation_start(rng)
        # updated_at is fixed by the messages; here: a placeholder, start.
        rows.append(
            (
                i,
                uuid.UUID(int=rng.getrandbits(128), version=4).hex,
                timestamp(start),
                timestamp(start),
                (i % N_USERS) + 1,
                f"Conversation {i}",
                "archived" if i % 10 == 0 else "active",
            )
        )
    return rows


def messages(
    convs: list[ConversationRow], per_conversation: int, *, seed: int = SEED
) -> Iterator[MessageRow]:
    """``per_conversation`` messages for each conversation, conversation by conversation.

    Timestamps move forward from the conversation's start, a few seconds to a
    few minutes apart; roles alternate user / assistant.
    """
    rng = random.Random(seed + 1)
    for conv in convs:
        at = dt.datetime.strptime(conv[2], "%Y-%m-%d %H:%M:%S.%f")
        for j in range(per_conversation):
            at += dt.timedelta(seconds=rng.randint(2, 300), microseconds=rng.randrange(1_000_000))
            if not at.microsecond:  # keep the text form uniform (always .ffffff)
                at += dt.timedelta(microseconds=1)
            stamp = timestamp(at)
            yield (
                uuid.UUID(int=rng.getrandbits(128), version=4).hex,
                stamp,
                stamp,
                conv[0],
                "user" if j % 2 == 0 else "assistant",
                message_text(rng),
            )


def connect_raw(path: Path) -> sqlite3.Connection:
    """A plain ``sqlite3`` connection with localchat's pragmas, autocommit mode."""
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
    for pragma in PRAGMAS:
        conn.execute(f"PRAGMA {pragma}")
    return conn


def _localchat_pragmas() -> list[str]:
    from localchat.database import BUSY_TIMEOUT_SECONDS, SQLITE_PRAGMAS

    out = [f"{key}={value}" for key, value in SQLITE_PRAGMAS.items()]
    out.append(f"busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
    return out


#: localchat's own pragmas (read from localchat, so the three always agree).
PRAGMAS = _localchat_pragmas()


def make_template(workdir: Path) -> Path:
    """An empty store migrated by localchat, plus the users every workload needs."""
    from localchat.config import resolve
    from localchat.database import Store

    path = workdir / "template.db"
    store = Store(resolve(path))
    store.upgrade()
    store.close()
    conn = connect_raw(path)
    stamp = timestamp(EPOCH)
    with conn:
        conn.execute("BEGIN")
        conn.executemany(
            'INSERT INTO "user" (id, uuid, created_at, updated_at, email, name, is_active) '
            "VALUES (?, ?, ?, ?, ?, ?, 1)",
            [
                (i, uuid.UUID(int=i, version=4).hex, stamp, stamp, f"user{i}@example.org", f"U{i}")
                for i in range(1, N_USERS + 1)
            ],
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def copy_template(template: Path, path: Path) -> Path:
    """A fresh copy of the template at ``path`` (any old copy and its WAL removed)."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    shutil.copyfile(template, path)
    return path


_INSERT_CONVERSATION = (
    "INSERT INTO conversation (id, uuid, created_at, updated_at, user_id, title, status) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_MESSAGE = (
    "INSERT INTO message (id, uuid, created_at, updated_at, conversation_id, parent_id, role, "
    "content) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def build_store(template: Path, path: Path, *, n_conversations: int, per_conversation: int) -> Path:
    """The canonical populated store read workloads use (built fast, not timed)."""
    copy_template(template, path)
    convs = conversations(n_conversations)
    conn = connect_raw(path)
    conn.execute("BEGIN")
    conn.executemany(_INSERT_CONVERSATION, convs)
    last: dict[int, tuple[str, str]] = {}
    parents: dict[int, int] = {}
    batch: list[tuple[object, ...]] = []
    for mid, row in enumerate(messages(convs, per_conversation), start=1):
        cid = row[3]
        batch.append((mid, *row[:4], parents.get(cid), *row[4:]))
        parents[cid] = mid
        last[cid] = (row[1], row[5])
        if len(batch) >= 50_000:
            conn.executemany(_INSERT_MESSAGE, batch)
            conn.execute("COMMIT")
            conn.execute("BEGIN")
            batch.clear()
    conn.executemany(_INSERT_MESSAGE, batch)
    conn.executemany(
        "UPDATE conversation SET updated_at = ?, last_message = ? WHERE id = ?",
        [(at, preview(text), cid) for cid, (at, text) in last.items()],
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def bench_store(
    workdir: Path | None, name: str, *, n_conversations: int, per_conversation: int
) -> Path:
    """A populated store ``<name>.db`` for a ``bench_*`` script, in ``workdir`` (else a
    fresh temporary folder)."""
    folder = workdir or Path(tempfile.mkdtemp(prefix=f"localchat-bench-{name}-"))
    folder.mkdir(parents=True, exist_ok=True)
    return build_store(
        make_template(folder),
        folder / f"{name}.db",
        n_conversations=n_conversations,
        per_conversation=per_conversation,
    )
