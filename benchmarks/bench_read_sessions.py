"""What a read session costs against a write session, on W3 and W4, and while a writer works.

    $ python -m benchmarks.bench_read_sessions                  # 2,000 conversations
    $ python -m benchmarks.bench_read_sessions --conversations 10000 --reads 5000

One store (built like the main runner's, from ``benchmarks.data``) is read
through ``get_session(path)`` (a write session: BEGIN IMMEDIATE) and through
``get_session(path, readonly=True)`` (a read session: query_only connections,
BEGIN DEFERRED), in alternating rounds so outside load hits both alike, with
raw sqlite3 running the same SQL as the reference. Reported: medians and p95
in ms and the ratios read/write and read/sqlite3. Then the same reads run
while another thread holds a write session open for ``--hold`` seconds:
write sessions wait for it, read sessions do not.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import data
from benchmarks.report import summarize

W3_SQL = (
    "SELECT * FROM (SELECT id, uuid, created_at, updated_at, conversation_id, parent_id, role, "
    "content FROM message WHERE conversation_id = ? ORDER BY created_at DESC, id DESC LIMIT 50) "
    "ORDER BY created_at, id"
)
W4_SQL = (
    "SELECT id, uuid, created_at, updated_at, user_id, title, status, last_message "
    "FROM conversation WHERE user_id = ? ORDER BY updated_at DESC, id DESC LIMIT 20"
)


def _localchat(path: Path, readonly: bool) -> tuple[Callable[[int], Any], Callable[[int], Any]]:
    from localchat import get_session
    from localchat.repository import list_conversations_for_user, list_messages_for_conversation

    def w3(cid: int) -> Any:
        with get_session(path, readonly=readonly) as s:
            return list_messages_for_conversation(s, cid, limit=50, latest=True)

    def w4(uid: int) -> Any:
        with get_session(path, readonly=readonly) as s:
            return list_conversations_for_user(s, uid, limit=20)

    return w3, w4


def _raw(path: Path) -> tuple[Callable[[int], Any], Callable[[int], Any]]:
    conn = data.connect_raw(path)

    def w3(cid: int) -> Any:
        conn.execute("BEGIN")
        rows = conn.execute(W3_SQL, (cid,)).fetchall()
        conn.execute("COMMIT")
        return rows

    def w4(uid: int) -> Any:
        conn.execute("BEGIN")
        rows = conn.execute(W4_SQL, (uid,)).fetchall()
        conn.execute("COMMIT")
        return rows

    return w3, w4


def _time(fn: Callable[[int], Any], keys: Sequence[int]) -> list[float]:
    clock, out = time.perf_counter, []
    for key in keys:
        t0 = clock()
        fn(key)
        out.append(clock() - t0)
    return out


def measure(path: Path, n_conversations: int, reads: int, rounds: int = 10) -> dict[str, Any]:
    """Medians/p95 (ms) of W3 and W4 for each way of reading, interleaved in rounds."""
    rng = random.Random(data.SEED)
    conv_ids = [rng.randint(1, n_conversations) for _ in range(reads)]
    user_ids = [rng.randint(1, data.N_USERS) for _ in range(reads)]
    ways = {
        "write session": _localchat(path, False),
        "read session": _localchat(path, True),
        "sqlite3": _raw(path),
    }
    samples: dict[str, dict[str, list[float]]] = {w: {"W3": [], "W4": []} for w in ways}
    for r in range(rounds):
        order = list(ways.items())
        order = order[r % len(order) :] + order[: r % len(order)]
        for name, (w3, w4) in order:
            samples[name]["W3"] += _time(w3, conv_ids[r::rounds])
            samples[name]["W4"] += _time(w4, user_ids[r::rounds])
    return {name: {w: summarize(v) for w, v in by.items()} for name, by in samples.items()}


def behind_a_writer(path: Path, hold: float, cid: int) -> dict[str, float]:
    """Seconds one W3 read takes while another thread's write session stays open ``hold`` s."""
    from localchat import get_session
    from localchat.repository import create_user

    out: dict[str, float] = {}
    for name, readonly in (("read session", True), ("write session", False)):
        started, release = threading.Event(), threading.Event()

        def writer(started: threading.Event = started, release: threading.Event = release) -> None:
            with get_session(path) as s:
                create_user(s, email=f"writer-{time.time_ns()}@example.org")
                started.set()
                release.wait(hold)

        thread = threading.Thread(target=writer)
        thread.start()
        started.wait(30)
        w3, _ = _localchat(path, readonly)
        t0 = time.perf_counter()
        w3(cid)
        out[name] = time.perf_counter() - t0
        release.set()
        thread.join()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--per-conversation", type=int, default=20)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--hold", type=float, default=2.0, help="seconds the writer holds")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    path = data.bench_store(
        args.workdir, "reads",
        n_conversations=args.conversations, per_conversation=args.per_conversation,
    )  # fmt: skip
    results = measure(path, args.conversations, args.reads)
    print(f"{args.conversations:,} conversations x {args.per_conversation} messages, "
          f"{args.reads:,} reads each, medians (p95) in ms:")  # fmt: skip
    for w in ("W3", "W4"):
        row = {name: results[name][w] for name in results}
        cells = ", ".join(f"{n} {v['median']:.3f} ({v['p95']:.3f})" for n, v in row.items())
        rw = row["read session"]["median"] / row["write session"]["median"]
        rs = row["read session"]["median"] / row["sqlite3"]["median"]
        print(f"  {w}: {cells}; read/write {rw:.2f}x, read/sqlite3 {rs:.2f}x")
    waits = behind_a_writer(path, args.hold, 1)
    print(f"one W3 read while another thread holds a write session for {args.hold:g} s:")
    for name, seconds in waits.items():
        print(f"  {name}: {seconds * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
