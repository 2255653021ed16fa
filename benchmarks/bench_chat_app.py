"""The chat app's speed: time to a usable sidebar, time to switch conversations.

    $ python -m benchmarks.bench_chat_app --db big.db            # an existing store
    $ python -m benchmarks.bench_chat_app --conversations 10000 --messages 1000000
    $ python -m benchmarks.bench_chat_app                        # a small store it builds

Driven headless with Textual's pilot (``App.run_test()``), as a person would
see it. **Open**: from before ``ChatData.open`` (open_store + upgrade) until
the sidebar shows its first page (target < 1 s). **Switch**: ``--switches``
times, open another conversation of the sidebar and wait until its current
branch is mounted in the window (target < 100 ms each); median, p90 and max;
then also until the app has handled every event that caused (layout, paint).

Without ``--db`` a store is built in a temporary folder: with
``benchmarks.big_store.build_big_store`` when that module is there, else here
with the public bulk import (``import_messages``), ``--messages`` spread over
``--conversations``, a regenerated reply in every tenth conversation.
Targets print as met / MISSED; the exit status is 0 either way.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from localchat import open_store


def build_store(path: Path, conversations: int, messages: int) -> None:
    """A store of ``messages`` messages in ``conversations`` conversations."""
    try:  # the shared generator, when the benchmarks have it
        from benchmarks.big_store import build_big_store  # type: ignore[import-not-found]
    except ImportError:
        build_big_store = None
    if build_big_store is not None:
        build_big_store(path, conversations=conversations, messages=messages)
        return
    from localchat.repository import add_sibling, create_conversation, import_messages

    store = open_store(path)
    store.upgrade()
    per = max(2, messages // max(1, conversations))
    done = 0
    while done < conversations:
        batch = min(500, conversations - done)
        with store.session() as s:
            rows = []
            convs = []
            for c in range(done, done + batch):
                conv = create_conversation(
                    s, title=f"Chat {c}: penguins, ice and trains", tags=["bench"] if c % 7 else []
                )
                convs.append(conv.id)
                rows.extend(
                    {
                        "conversation_id": conv.id,
                        "role": "user" if i % 2 == 0 else "assistant",
                        "content": f"message {i} of chat {c}: about penguins, ice and trains. " * 3,
                        "model": None if i % 2 == 0 else "llama3",
                    }
                    for i in range(per)
                )
            import_messages(s, rows)
            for conv_id in convs[::10]:  # a regenerated last reply: a "< 2/2 >" to draw
                from localchat.repository import get_current_leaf

                leaf = get_current_leaf(s, conv_id)
                if leaf is not None and leaf.parent_id is not None:
                    add_sibling(s, leaf.id, "another version of the answer")
        done += batch


async def measure(db: Path, switches: int) -> dict[str, float]:
    from textual.widgets import OptionList

    from localchat.app.data import ChatData
    from localchat.app.ui import ChatApp

    started = time.perf_counter()
    app = ChatApp(ChatData.open(db))
    result: dict[str, float] = {}
    async with app.run_test(size=(140, 45)) as pilot:
        listing = app.query_one("#conversations", OptionList)
        while listing.option_count == 0:
            await asyncio.sleep(0.001)
        result["open_s"] = time.perf_counter() - started
        result["sidebar_rows"] = listing.option_count
        await app.workers.wait_for_complete()
        await pilot.pause()
        rows = app.sidebar_rows
        picks = [rows[(i * 37 + 1) % len(rows)].id for i in range(switches)]
        times, settled = [], []
        for conv_id in picks:
            if conv_id == app.drawn:
                continue
            t0 = time.perf_counter()
            app.open_conversation(conv_id)
            while app.drawn != conv_id:
                await asyncio.sleep(0.0005)
            times.append(time.perf_counter() - t0)
            await pilot.pause()  # every event it caused handled: layout, paint
            settled.append(time.perf_counter() - t0)
        result["settled_median_ms"] = statistics.median(settled) * 1000
        result["settled_max_ms"] = max(settled) * 1000
        result["switch_median_ms"] = statistics.median(times) * 1000
        result["switch_p90_ms"] = sorted(times)[int(len(times) * 0.9)] * 1000
        result["switch_max_ms"] = max(times) * 1000
        result["switches"] = len(times)
        result["messages_shown_last"] = len(app.view.messages) if app.view else 0
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="an existing store (default: build one)")
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--switches", type=int, default=30)
    args = parser.parse_args(argv)
    db = args.db
    if db is None:
        db = Path(tempfile.mkdtemp(prefix="bench-chat-app-")) / "chat.db"
        t0 = time.perf_counter()
        build_store(db, args.conversations, args.messages)
        print(f"built {db}: {args.conversations:,} conversations, {args.messages:,} messages "
              f"in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    counts = open_store(db).table_counts()
    print(f"store: {db} ({counts.get('conversation', 0):,} conversations, "
          f"{counts.get('message', 0):,} messages)")  # fmt: skip
    r = asyncio.run(measure(db, args.switches))
    verdict = {True: "met", False: "MISSED"}
    print(f"open to a usable sidebar ({int(r['sidebar_rows'])} rows): {r['open_s'] * 1000:.0f} ms "
          f"(target < 1000 ms: {verdict[r['open_s'] < 1]})")  # fmt: skip
    median, p90 = verdict[r["switch_median_ms"] < 100], verdict[r["switch_p90_ms"] < 100]
    print(f"switch conversations ({int(r['switches'])} switches): median "
          f"{r['switch_median_ms']:.1f} ms, p90 {r['switch_p90_ms']:.1f} ms, max "
          f"{r['switch_max_ms']:.1f} ms (target < 100 ms: median {median}, p90 {p90})")  # fmt: skip
    print(f"  until every event it caused is handled (layout, paint): median "
          f"{r['settled_median_ms']:.1f} ms, max {r['settled_max_ms']:.1f} ms")  # fmt: skip
    if hasattr(os, "getloadavg"):
        print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
