"""100 concurrent requests against the example web API on one SQLite store.

    $ python -m benchmarks.bench_web                          # 100 requests x 5 rounds
    $ python -m benchmarks.bench_web --requests 200 --rounds 10

The app is ``examples/web_api.py`` on a fresh store seeded with ``--users``
users (each signed in, with ``--conversations`` conversations of 6 messages).
Each round sends ``--requests`` requests at once (``asyncio.gather`` over
``httpx.AsyncClient`` with ``ASGITransport``: FastAPI runs the endpoints in its
thread pool, so they reach the store concurrently), an even mix of listing
conversations, opening one, posting a message and searching, each as a random
user. Reported: requests that failed (any 5xx, any "database is locked", any
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
KINDS = ("list", "open", "post", "search")
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
        else:
            r = await client.get("/search", params={"q": random.choice(WORDS)}, headers=headers)
    except Exception as exc:  # an app exception reaching the client: a failure
        return kind, time.perf_counter() - start, f"{type(exc).__name__}: {exc}"
    elapsed = time.perf_counter() - start
    expected = 201 if kind == "post" else 200
    if r.status_code != expected or "database is locked" in r.text:
        return kind, elapsed, f"{r.status_code}: {r.text[:200]}"
    return kind, elapsed, None


async def _round(app: Any, seeded: list[tuple[str, list[str]]], n: int) -> list[Any]:
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        calls = []
        for i in range(n):
            token, threads = random.choice(seeded)
            calls.append(_one(client, KINDS[i % len(KINDS)], token, random.choice(threads)))
        return await asyncio.gather(*calls)


def measure(requests: int, rounds: int, users: int, conversations: int) -> dict[str, Any]:
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
        results.extend(asyncio.run(_round(app, seeded, requests)))
        walls.append(time.perf_counter() - start)
    failures = [err for _, _, err in results if err is not None]
    return {
        "all": summarize([t for _, t, _ in results]),
        "kinds": {k: summarize([t for kind, t, _ in results if kind == k]) for k in KINDS},
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
    args = parser.parse_args(argv)
    result = measure(args.requests, args.rounds, args.users, args.conversations)
    print(f"{args.rounds} rounds of {args.requests} concurrent requests, one SQLite store")
    print(f"failed requests: {len(result['failures'])} (database is locked: {result['locked']})")
    for name, stats in [("all", result["all"]), *result["kinds"].items()]:
        print(f"  {name:7s} median {stats['median']:8.2f} ms   p95 {stats['p95']:8.2f} ms")
    rounds = result["rounds"]
    print(f"  a round  median {rounds['median']:8.2f} ms   p95 {rounds['p95']:8.2f} ms")
    for failure in result["failures"][:5]:
        print("  failure:", failure)
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
