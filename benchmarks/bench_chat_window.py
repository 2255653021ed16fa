"""A chat window's two hot paths: streaming a reply, opening the current branch.

    $ python -m benchmarks.bench_chat_window                       # 100,000 messages
    $ python -m benchmarks.bench_chat_window --messages 5000 --opens 200

Streaming: a 2,000-token reply arrives in ``--chunks`` chunks (10 tokens each
by default); each chunk is saved in its own transaction by ``ReplyStream.append``
(a write session, one ``UPDATE ... content = content || ?``). The reference is
raw sqlite3 running that same UPDATE and a COMMIT on a placeholder row of the
same store (same indexes and full-text triggers). Reported: median and p95 per
chunk in ms and the ratio localchat/sqlite3 (target <= 2x); then search must
find the finished reply's last words.

Branch: one conversation of 500 messages in 20 branches (each a regeneration
with its own follow-ups) in a store of ``--messages`` messages; the window
opens ``list_messages_for_conversation(s, conv, limit=50, latest=True)``
(the last 50 of the current branch) ``--opens`` times inside a read session.
Reported: median and p95 in ms (target p95 < 1 ms).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.data import connect_raw
from benchmarks.report import summarize


def _filler(s, total: int) -> None:
    from localchat.repository import create_conversation, import_messages

    per = 100
    rows = []
    for c in range(max(0, total) // per):
        conv = create_conversation(s, title=f"filler {c}")
        rows.extend(
            {"conversation_id": conv.id, "role": "user" if i % 2 == 0 else "assistant",
             "content": f"filler message {c} {i} about penguins and ice"}
            for i in range(per)
        )  # fmt: skip
        if len(rows) >= 20_000:
            import_messages(s, rows)
            rows = []
    if rows:
        import_messages(s, rows)


def bench_streaming(store, path: Path, tokens: int, chunks: int) -> dict:
    from localchat.repository import create_conversation, stream_reply
    from localchat.search import search_messages

    per_chunk = tokens // chunks
    words = [f"tok{i}" for i in range(tokens)]
    texts = [" ".join(words[i * per_chunk : (i + 1) * per_chunk]) + " " for i in range(chunks)]
    with store.session() as s:
        conv = create_conversation(s, title="stream")
    reply = stream_reply(store, conv.id)
    ours = []
    for text in texts:
        t0 = time.perf_counter()
        reply.append(text)
        ours.append(time.perf_counter() - t0)
    reply._finish("complete")
    with store.read_session() as s:
        found = [h.message.id for h in search_messages(s, words[-1])]
    # the reference: the same UPDATE on a placeholder of the same store, raw sqlite3
    raw = connect_raw(path)  # localchat's pragmas, autocommit mode
    cur = raw.execute(
        "INSERT INTO message (uuid, created_at, updated_at, conversation_id, role, content, "
        "status) VALUES (lower(hex(randomblob(16))), '2030-01-01 00:00:00', "
        "'2030-01-01 00:00:00', ?, 'assistant', '', 'streaming')",
        (conv.id,),
    )
    raw_id = cur.lastrowid
    theirs = []
    for text in texts:
        t0 = time.perf_counter()
        raw.execute("BEGIN IMMEDIATE")
        raw.execute(
            "UPDATE message SET content = content || ?, updated_at = ? "
            "WHERE id = ? AND status = 'streaming'",
            (text, "2030-01-01 00:00:01", raw_id),
        )
        raw.execute("COMMIT")
        theirs.append(time.perf_counter() - t0)
    raw.close()
    a, b = summarize(ours), summarize(theirs)
    return {
        "localchat": a,
        "sqlite3": b,
        "ratio": a["median"] / b["median"],
        "found_by_search": found == [reply.id],
    }


def bench_branch(store, opens: int) -> dict:
    from localchat.repository import (
        add_message,
        add_sibling,
        create_conversation,
        list_messages_for_conversation,
        switch_branch,
    )

    with store.session() as s:
        conv = create_conversation(s, title="branches")
        q = add_message(s, conv.id, "user", "the question")
        first = None
        for b in range(20):  # 20 branches of 25 messages: 1 + 20 * 25 ~ 500
            reply = (
                add_message(s, conv.id, "assistant", f"answer {b}", parent_id=q.id)
                if first is None
                else add_sibling(s, first.id, f"answer {b}")
            )
            first = first or reply
            for i in range(24):
                add_message(s, conv.id, "user" if i % 2 == 0 else "assistant", f"b{b} m{i}")
        switch_branch(s, first.id)  # the user flipped back to the first version
    timings = []
    with store.read_session() as s:
        for _ in range(opens):
            t0 = time.perf_counter()
            shown = list_messages_for_conversation(s, conv.id, limit=50, latest=True)
            timings.append(time.perf_counter() - t0)
    assert shown[-1].content == "b0 m23" and len(shown) == 26
    return summarize(timings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--opens", type=int, default=2000)
    args = parser.parse_args(argv)
    from localchat import open_store

    path = Path(tempfile.mkdtemp()) / "bench.db"
    store = open_store(path)
    store.upgrade()
    with store.session() as s:
        _filler(s, args.messages)
    stream = bench_streaming(store, path, args.tokens, args.chunks)
    branch = bench_branch(store, args.opens)
    print(f"store: {args.messages:,} filler messages")
    print(
        f"streaming {args.tokens} tokens in {args.chunks} chunks, one transaction each: "
        f"localchat median {stream['localchat']['median']:.3f} ms "
        f"(p95 {stream['localchat']['p95']:.3f}), sqlite3 median "
        f"{stream['sqlite3']['median']:.3f} ms (p95 {stream['sqlite3']['p95']:.3f}); "
        f"ratio {stream['ratio']:.2f}x (target <= 2x: "
        f"{'met' if stream['ratio'] <= 2 else 'MISSED'}); found by search: "
        f"{stream['found_by_search']}"
    )
    print(
        f"current branch, last 50 of 500 messages in 20 branches: median "
        f"{branch['median']:.3f} ms, p95 {branch['p95']:.3f} ms (target p95 < 1 ms: "
        f"{'met' if branch['p95'] < 1 else 'MISSED'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
