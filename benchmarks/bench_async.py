"""What an async session costs against a sync one: W1, W3 and W4 per call, in the same run.

    $ python -m benchmarks.bench_async                      # 2,000 conversations x 20
    $ python -m benchmarks.bench_async --calls 3000 --conversations 10000

One store (built like the main runner's, from ``benchmarks.data``) and one
event loop. Each call is one session, as an app makes it: W1 appends a
message (``get_session(path)`` + ``add_message`` against ``aio_session(path)``
+ ``await aio.add_message``), W3 reads a conversation's latest 50 messages
and W4 a user's 20 latest conversations, both in read sessions. Sync and
async calls alternate in rounds so outside load hits both alike (the sync
calls run in the loop's thread, blocking it, which costs them nothing).
Reported: medians and p95 in ms and the ratio async/sync (target: <= 1.5x).
Then the same calls inside one open session each way (a request that makes
several calls pays a session's ``BEGIN``/``COMMIT`` once): the cost of the
call itself.
Then 50 tasks append at once while a 5 ms ticker runs: wall time and the
loop's longest stall.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import data
from benchmarks.report import summarize

TARGET = 1.5


def _sync_calls(path: Path) -> dict[str, Callable[[int], Any]]:
    from localchat import get_session
    from localchat.repository import (
        add_message,
        list_conversations_for_user,
        list_messages_for_conversation,
    )

    def w1(cid: int) -> Any:
        with get_session(path) as s:
            return add_message(s, cid, "user", "sync message")

    def w3(cid: int) -> Any:
        with get_session(path, readonly=True) as s:
            return list_messages_for_conversation(s, cid, limit=50, latest=True)

    def w4(uid: int) -> Any:
        with get_session(path, readonly=True) as s:
            return list_conversations_for_user(s, uid, limit=20)

    return {"W1": w1, "W3": w3, "W4": w4}


def _async_calls(path: Path) -> dict[str, Callable[[int], Awaitable[Any]]]:
    from localchat import aio

    async def w1(cid: int) -> Any:
        async with aio.aio_session(path) as s:
            return await aio.add_message(s, cid, "user", "async message")

    async def w3(cid: int) -> Any:
        async with aio.aio_session(path, readonly=True) as s:
            return await aio.list_messages_for_conversation(s, cid, limit=50, latest=True)

    async def w4(uid: int) -> Any:
        async with aio.aio_session(path, readonly=True) as s:
            return await aio.list_conversations_for_user(s, uid, limit=20)

    return {"W1": w1, "W3": w3, "W4": w4}


def _keys(n_conversations: int, calls: int) -> dict[str, list[int]]:
    rng = random.Random(data.SEED)
    return {
        "W1": [rng.randint(1, n_conversations) for _ in range(calls)],
        "W3": [rng.randint(1, n_conversations) for _ in range(calls)],
        "W4": [rng.randint(1, data.N_USERS) for _ in range(calls)],
    }


Samples = dict[str, dict[str, list[float]]]


async def _interleaved(
    keys: dict[str, list[int]],
    rounds: int,
    sync_batch: Callable[[str, list[int], list[float]], None],
    async_batch: Callable[[str, list[int], list[float]], Awaitable[None]],
) -> dict[str, dict[str, dict[str, float]]]:
    """Medians/p95 (ms) of both ways, batches of each workload alternating sync/async first."""
    samples: Samples = {"sync": {w: [] for w in keys}, "async": {w: [] for w in keys}}
    for r in range(rounds):
        for w, ks in keys.items():
            batch = ks[r::rounds]
            for first in ("sync", "async") if r % 2 else ("async", "sync"):
                if first == "sync":
                    sync_batch(w, batch, samples["sync"][w])
                else:
                    await async_batch(w, batch, samples["async"][w])
    return {way: {w: summarize(v) for w, v in by.items()} for way, by in samples.items()}


async def measure(
    path: Path, n_conversations: int, calls: int, rounds: int = 10
) -> dict[str, dict[str, dict[str, float]]]:
    """Medians/p95 (ms) per workload for sync and async calls, one session per call."""
    sync, aio = _sync_calls(path), _async_calls(path)
    await aio["W3"](1)  # pools open, the store checked: not timed
    await aio["W1"](1)
    clock = time.perf_counter

    def sync_batch(w: str, batch: list[int], out: list[float]) -> None:
        for key in batch:
            t0 = clock()
            sync[w](key)
            out.append(clock() - t0)

    async def async_batch(w: str, batch: list[int], out: list[float]) -> None:
        for key in batch:
            t0 = clock()
            await aio[w](key)
            out.append(clock() - t0)

    return await _interleaved(_keys(n_conversations, calls), rounds, sync_batch, async_batch)


async def measure_in_session(
    path: Path, n_conversations: int, calls: int, rounds: int = 10
) -> dict[str, dict[str, dict[str, float]]]:
    """Like :func:`measure`, each call timed alone inside one open session per batch."""
    from localchat import aio, get_session
    from localchat.repository import (
        add_message,
        list_conversations_for_user,
        list_messages_for_conversation,
    )

    calls_of = {
        "W1": (add_message, aio.add_message, ("user", "in-session message"), {}, False),
        "W3": (list_messages_for_conversation, aio.list_messages_for_conversation, (),
               {"limit": 50, "latest": True}, True),
        "W4": (list_conversations_for_user, aio.list_conversations_for_user, (),
               {"limit": 20}, True),
    }  # fmt: skip
    clock = time.perf_counter

    def sync_batch(w: str, batch: list[int], out: list[float]) -> None:
        fn, _, args, kwargs, readonly = calls_of[w]
        with get_session(path, readonly=readonly) as s:
            for key in batch:
                t0 = clock()
                fn(s, key, *args, **kwargs)
                out.append(clock() - t0)

    async def async_batch(w: str, batch: list[int], out: list[float]) -> None:
        _, fn, args, kwargs, readonly = calls_of[w]
        async with aio.aio_session(path, readonly=readonly) as s:
            for key in batch:
                t0 = clock()
                await fn(s, key, *args, **kwargs)
                out.append(clock() - t0)

    return await _interleaved(_keys(n_conversations, calls), rounds, sync_batch, async_batch)


def _report(results: dict[str, dict[str, dict[str, float]]]) -> None:
    for w in ("W1", "W3", "W4"):
        s, a = results["sync"][w], results["async"][w]
        ratio = a["median"] / s["median"]
        verdict = f"target <= {TARGET}x: {'met' if ratio <= TARGET else 'missed'}"
        print(f"  {w}: sync {s['median']:.3f} ({s['p95']:.3f}), async {a['median']:.3f} "
              f"({a['p95']:.3f}); async/sync {ratio:.2f}x ({verdict})")  # fmt: skip


async def concurrent_writers(path: Path, tasks: int, n_conversations: int) -> dict[str, float]:
    """``tasks`` tasks append one message each at once; wall time and longest loop stall."""
    w1 = _async_calls(path)["W1"]
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    t0 = time.perf_counter()
    await asyncio.gather(*(w1(1 + i % n_conversations) for i in range(tasks)))
    wall = time.perf_counter() - t0
    stop.set()
    await tick
    return {"wall_ms": wall * 1000, "max_gap_ms": max(gaps) * 1000}


async def _run(args: argparse.Namespace, path: Path) -> int:
    results = await measure(path, args.conversations, args.calls, args.rounds)
    print(f"{args.conversations:,} conversations x {args.per_conversation} messages, "
          f"{args.calls:,} calls per workload and way, medians (p95) in ms:")  # fmt: skip
    _report(results)
    print("the same calls inside one open session each way (the call alone):")
    _report(await measure_in_session(path, args.conversations, args.calls, args.rounds))
    burst = await concurrent_writers(path, args.tasks, args.conversations)
    print(f"{args.tasks} tasks appending at once: {burst['wall_ms']:.1f} ms in all, "
          f"longest event-loop stall {burst['max_gap_ms']:.1f} ms (5 ms ticker)")  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--per-conversation", type=int, default=20)
    parser.add_argument("--calls", type=int, default=2000, help="per workload and way")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=50, help="concurrent writers")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    path = data.bench_store(
        args.workdir, "async",
        n_conversations=args.conversations, per_conversation=args.per_conversation,
    )  # fmt: skip
    return asyncio.run(_run(args, path))


if __name__ == "__main__":
    raise SystemExit(main())
