"""100 concurrent requests against the example web API on one SQLite store.

    $ python -m benchmarks.bench_web                          # 100 requests x 5 rounds
    $ python -m benchmarks.bench_web --requests 200 --rounds 10
    $ python -m benchmarks.bench_web --kinds post        # 100 async writes at once

The app is ``examples/web_api.py`` on a fresh store seeded with ``--users``
users (each signed in, with ``--conversations`` conversations of 6 messages).
Each round sends ``--requests`` requests at once (``asyncio.gather`` over
``httpx.AsyncClient`` with ``ASGITransport``: FastAPI runs the endpoints in its
thread pool and the ``async def`` ones on its loop, so they reach the store
concurrently), an even mix of listing conversations (``list``), opening one
(``open``), searching (``search``), all ``def`` on ``get_read_db``; posting a
message (``post``) and creating a conversation (``new``), both ``async def`` on
``get_async_db`` with no commit of their own; and uploading a small document
(``upload``, ``def`` on ``get_db``, committing before it returns), each as a
random user. Reported: requests that failed (any 5xx, any "database is locked", any
exception: must be 0) and latency median / p95 per kind and overall. Exit
status 1 if any request failed or answered wrongly. (Not one of the main
runner's extras: it defines ``measure``, not ``run(ctx)``.)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.report import summarize

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "web_api.py"
KINDS = ("list", "open", "post", "new", "upload", "search")
STYLE = {
    "list": "def, get_read_db",
    "open": "def, get_read_db",
    "post": "async def, get_async_db",
    "new": "async def, get_async_db",
    "upload": "def, get_db + commit",
    "search": "def, get_read_db",
}
WRITES = {"post": 201, "new": 201, "upload": 201}
WORDS = "museum harbour tram pastry river castle market garden bridge opera".split()


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("localchat_example_web_api", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _seed(store: Any, users: int, conversations: int) -> list[tuple[str, list[str]]]:
    """Users with a web session each: ``[(token, [thread ids])]``."""
    from localchat.repository import (
        add_message,
        create_conversation,
        create_user,
        create_web_session,
    )

    rng = random.Random(7)
    seeded = []
    with store.session() as s:
        for u in range(users):
            user = create_user(s, f"user{u}@example.org")
            token = f"token-{u}"
            create_web_session(s, token, user.id)
            threads = []
            for c in range(conversations):
                conv = create_conversation(s, user.id, title=f"Chat {c}")
                for m in range(6):
                    role = "user" if m % 2 == 0 else "assistant"
                    text = " ".join(rng.choice(WORDS) for _ in range(12))
                    add_message(s, conv.id, role, text)
                threads.append(conv.thread_id)
            seeded.append((token, threads))
    return seeded


async def _one(client: Any, kind: str, token: str, thread: str) -> tuple[str, float, str | None]:
    headers = {"cookie": f"localchat_session={token}"}
    start = time.perf_counter()
    try:
        if kind == "list":
            r = await client.get("/conversations", headers=headers)
        elif kind == "open":
            r = await client.get(f"/conversations/{thread}", headers=headers)
        elif kind == "post":
            body = {"content": "and the " + random.choice(WORDS)}
            r = await client.post(f"/conversations/{thread}/messages", json=body, headers=headers)
        elif kind == "new":
            r = await client.post("/conversations", json={"title": "new"}, headers=headers)
        elif kind == "upload":
            files = {"file": ("note.txt", b"a note on the " + random.choice(WORDS).encode())}
            r = await client.post("/documents", files=files, headers=headers)
        else:
            r = await client.get("/search", params={"q": random.choice(WORDS)}, headers=headers)
    except Exception as exc:  # an app exception reaching the client: a failure
        return kind, time.perf_counter() - start, f"{type(exc).__name__}: {exc}"
    elapsed = time.perf_counter() - start
    expected = WRITES.get(kind, 200)
    if r.status_code != expected or "database is locked" in r.text:
        return kind, elapsed, f"{r.status_code}: {r.text[:200]}"
    return kind, elapsed, None


async def _round(
    app: Any, seeded: list[tuple[str, list[str]]], n: int, kinds: tuple[str, ...]
) -> list[Any]:
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        calls = []
        for i in range(n):
            token, threads = random.choice(seeded)
            calls.append(_one(client, kinds[i % len(kinds)], token, random.choice(threads)))
        return await asyncio.gather(*calls)


def measure(
    requests: int, rounds: int, users: int, conversations: int, kinds: tuple[str, ...] = KINDS
) -> dict[str, Any]:
    """The timings and failures of ``rounds`` rounds of ``requests`` concurrent requests."""
    web_api = _example()
    folder = Path(tempfile.mkdtemp(prefix="localchat-bench-web-"))
    app = web_api.create_app(folder / "chat.db")
    seeded = _seed(app.state.store, users, conversations)
    random.seed(11)
    results: list[Any] = []
    walls = []
    for _ in range(rounds):
        start = time.perf_counter()
        results.extend(asyncio.run(_round(app, seeded, requests, kinds)))
        walls.append(time.perf_counter() - start)
    failures = [err for _, _, err in results if err is not None]
    return {
        "all": summarize([t for _, t, _ in results]),
        "kinds": {k: summarize([t for kind, t, _ in results if kind == k]) for k in kinds},
        "rounds": summarize(walls),
        "failures": failures,
        "locked": sum("database is locked" in f for f in failures),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="concurrent requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--conversations", type=int, default=10, help="per user")
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help=f"the mix, comma-separated: {','.join(KINDS)}"
    )
    args = parser.parse_args(argv)
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        parser.error(
            f"--kinds: {', '.join(unknown) or 'none given'}; choose from {', '.join(KINDS)}"
        )
    result = measure(args.requests, args.rounds, args.users, args.conversations, kinds)
    mix = ", ".join(kinds)
    print(f"{args.rounds} rounds of {args.requests} concurrent requests ({mix}), one SQLite store")
    print(f"failed requests: {len(result['failures'])} (database is locked: {result['locked']})")
    for name, stats in [("all", result["all"]), *result["kinds"].items()]:
        style = f"  ({STYLE[name]})" if name in STYLE else ""
        print(f"  {name:7s} median {stats['median']:8.2f} ms   p95 {stats['p95']:8.2f} ms{style}")
    rounds = result["rounds"]
    print(f"  a round  median {rounds['median']:8.2f} ms   p95 {rounds['p95']:8.2f} ms")
    for failure in result["failures"][:5]:
        print("  failure:", failure)
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
