"""W1..W7: the same work done by every implementation, timed the same way.

Each function takes the :class:`~benchmarks.run.Context` and the implementations
(``{display name: module}``) and returns report records (see ``report.py``).
Write workloads start from a fresh copy of the template per implementation;
read workloads share one canonical store and interleave the implementations
in rounds, so a burst of load on a shared machine hits all of them alike.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import sqlite3
import statistics
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import data
from .report import BASELINE, summarize

if TYPE_CHECKING:
    from .run import Context

__all__ = ["append", "bulk_import", "reads", "cold_start", "export", "CHILD_KEYS"]

LOCALCHAT = "localchat"
CHILD_KEYS = {"sqlite3": "sqlite3", "SQLAlchemy ORM": "sqlalchemy", "localchat": "localchat"}


def _ratio(values: dict[str, dict[str, float]], stat: str, impl: str = LOCALCHAT) -> float | None:
    if impl not in values or BASELINE not in values:
        return None
    return values[impl][stat] / values[BASELINE][stat]


def _ratio_target(
    record: dict[str, Any], limit: float, stat: str, extra: str = ""
) -> dict[str, Any]:
    r = _ratio(record["values"], stat)
    record["target_ratio"] = limit
    record["target"] = f"<= {limit}x sqlite3 ({stat}){extra}"
    record["met"] = None if r is None else r <= limit
    record["figure"] = "-" if r is None else f"{r:.2f}x"
    return record


# -- W1 ------------------------------------------------------------------------
def append(ctx: Context, impls: dict[str, Any]) -> list[dict[str, Any]]:
    sizes = ctx.sizes
    rng = random.Random(data.SEED + 7)
    plan = [
        {
            "user_id": (i % data.N_USERS) + 1,
            "title": f"Chat {i}",
            "messages": [
                ("user" if j % 2 == 0 else "assistant", data.message_text(rng))
                for j in range(sizes.w1_messages)
            ],
        }
        for i in range(sizes.w1_conversations)
    ]
    paths = {
        name: data.copy_template(ctx.template, ctx.workdir / f"w1-{CHILD_KEYS[name]}.db")
        for name in impls
    }
    latencies: dict[str, list[float]] = {name: [] for name in impls}
    walls = dict.fromkeys(impls, 0.0)
    rounds = min(10, len(plan))
    for r in range(rounds):  # in turns, so a burst of outside load hits everyone alike
        for name, module in _rotated(impls, r):
            t0 = time.perf_counter()
            latencies[name] += module.append(paths[name], ctx.pragmas, plan[r::rounds])
            walls[name] += time.perf_counter() - t0
    values = {}
    for name in impls:
        values[name] = summarize(latencies[name]) | {"wall_s": walls[name]}
        n_conv = sizes.w1_conversations
        _check_counts(paths[name], n_conv, n_conv * sizes.w1_messages)
        ctx.log(f"  W1 {name}: median {values[name]['median']:.3f} ms/message, {walls[name]:.2f} s")
    n = sizes.w1_conversations * sizes.w1_messages
    medians = ", ".join(f"{k} {v['median']:.3f} ms" for k, v in values.items())
    per_message = _ratio(values, "median")
    record = {
        "id": "W1",
        "name": f"append: {sizes.w1_conversations} x {sizes.w1_messages} messages, "
        "one transaction each",
        "unit": "s",
        "stat": "total_s",
        "values": values,
        "note": f"{n} messages; the time of all append transactions together (WAL "
        "checkpoints and FTS merges included). Per-message median: "
        f"{medians}" + (f" ({per_message:.2f}x)." if per_message is not None else "."),
    }
    return [_ratio_target(record, 1.5, "total_s")]


def _check_counts(path: Path, conversations: int, messages: int) -> None:
    conn = sqlite3.connect(str(path))
    try:
        got = (
            conn.execute("SELECT count(*) FROM conversation").fetchone()[0],
            conn.execute("SELECT count(*) FROM message").fetchone()[0],
        )
    finally:
        conn.close()
    if got != (conversations, messages):
        raise RuntimeError(f"{path.name}: expected {conversations, messages} rows, found {got}")


def _fingerprint(path: Path) -> str:
    """What every implementation must have written identically in W2."""
    conn = sqlite3.connect(str(path))
    digest = hashlib.sha256()
    try:
        for sql in (
            "SELECT id, user_id, title, status, updated_at, last_message "
            "FROM conversation ORDER BY id",
            "SELECT conversation_id, role, content, created_at, updated_at, parent_id, model, "
            "metadata FROM message ORDER BY id",
        ):
            for row in conn.execute(sql):
                digest.update(repr(row).encode())
    finally:
        conn.close()
    return digest.hexdigest()


# -- W2 ------------------------------------------------------------------------
def bulk_import(ctx: Context, impls: dict[str, Any]) -> list[dict[str, Any]]:
    sizes = ctx.sizes
    per = sizes.w2_messages // sizes.w2_conversations
    rows = data.conversations(sizes.w2_conversations)
    parse = dt.datetime.fromisoformat
    convs = [
        {"user_id": r[4], "title": r[5], "status": r[6], "created_at": parse(r[2])} for r in rows
    ]
    msgs = [
        {"conversation": m[3] - 1, "role": m[4], "content": m[5], "created_at": parse(m[1])}
        for m in data.messages(rows, per)
    ]
    repeats = 3 if ctx.mode == "full" else 1
    timings: dict[str, list[float]] = {name: [] for name in impls}
    prints = {}
    for rep in range(repeats):
        for name, module in _rotated(impls, rep):
            path = data.copy_template(ctx.template, ctx.workdir / f"w2-{CHILD_KEYS[name]}.db")
            t0 = time.perf_counter()
            module.bulk_import(path, ctx.pragmas, convs, msgs)
            timings[name].append(time.perf_counter() - t0)
            if rep == 0:
                _check_counts(path, sizes.w2_conversations, sizes.w2_messages)
                prints[name] = _fingerprint(path)
            path.unlink()
    if len(set(prints.values())) > 1:
        raise RuntimeError(f"W2 stores differ between implementations: {prints}")
    values = {}
    for name, ts in timings.items():
        values[name] = {"median": statistics.median(ts), "runs": ts}
        rate = sizes.w2_messages / values[name]["median"]
        ctx.log(f"  W2 {name}: {values[name]['median']:.2f} s ({rate:,.0f} messages/s)")
    record = {
        "id": "W2",
        "name": f"bulk import: {sizes.w2_messages:,} messages in "
        f"{sizes.w2_conversations:,} conversations",
        "unit": "s",
        "stat": "median",
        "values": values,
        "note": f"median of {repeats} run(s), one transaction each; stores verified identical.",
    }
    return [_ratio_target(record, 1.5, "median")]


def _rotated(impls: dict[str, Any], k: int) -> list[tuple[str, Any]]:
    items = list(impls.items())
    k %= len(items)
    return items[k:] + items[:k]


# -- W3, W4, W5 ------------------------------------------------------------------
def _interleaved(
    ctx: Context, impls: dict[str, Any], path: Path, fn: str, keys: list[int]
) -> dict[str, dict[str, float]]:
    rounds = max(1, min(10, len(keys) // 50))
    warm = keys[:5]
    samples: dict[str, list[float]] = {name: [] for name in impls}
    for r in range(rounds):
        chunk = keys[r::rounds]
        for name, module in _rotated(impls, r):
            got = getattr(module, fn)(path, ctx.pragmas, warm + chunk)
            samples[name] += got[len(warm) :]
    return {name: summarize(s) for name, s in samples.items()}


def reads(
    ctx: Context, impls: dict[str, Any], path: Path, n_conversations: int, label: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """W3 (latest 50 messages of a random conversation) and W4 (a user's 20 latest)."""
    rng = random.Random(data.SEED + n_conversations)
    conv_ids = [rng.randint(1, n_conversations) for _ in range(ctx.sizes.reads)]
    user_ids = [rng.randint(1, data.N_USERS) for _ in range(ctx.sizes.reads)]
    w3 = _interleaved(ctx, impls, path, "open_conversation", conv_ids)
    w4 = _interleaved(ctx, impls, path, "list_conversations", user_ids)
    for name in impls:
        ctx.log(
            f"  {label} {name}: open {w3[name]['median']:.3f} / p95 {w3[name]['p95']:.3f} ms, "
            f"list {w4[name]['median']:.3f} / p95 {w4[name]['p95']:.3f} ms"
        )
    open_rec = {
        "name": f"open conversation: latest 50 messages ({label})",
        "unit": "ms",
        "stat": "median",
        "values": w3,
    }
    list_rec = {
        "name": f"conversation list: a user's 20 latest ({label})",
        "unit": "ms",
        "stat": "median",
        "values": w4,
    }
    return open_rec, list_rec


def read_targets(record: dict[str, Any], wid: str) -> dict[str, Any]:
    record["id"] = wid
    _ratio_target(record, 2.0, "median", " and p95 < 1 ms")
    mine = record["values"].get(LOCALCHAT)
    if mine is not None:
        p95_ok = mine["p95"] < 1.0
        record["met"] = bool(record["met"]) and p95_ok
        record["figure"] += f", p95 {mine['p95']:.3f} ms"
    return record


def growth_targets(record: dict[str, Any], wid: str, small: dict[str, Any]) -> dict[str, Any]:
    record["id"] = wid
    record["label"] = f"{wid} ({small['id']})"
    mine, before = record["values"].get(LOCALCHAT), small["values"].get(LOCALCHAT)
    record["target"] = f"localchat median within 1.5x of {small['id']} at 10x the data"
    if mine is None or before is None:
        record["met"] = None
        return record
    growth = mine["median"] / before["median"]
    record["met"] = growth <= 1.5
    record["figure"] = (
        f"{growth:.2f}x of {small['id']} ({before['median']:.3f} -> {mine['median']:.3f} ms); "
        f"{_ratio(record['values'], 'median'):.2f}x sqlite3"
    )
    return record


# -- W6 ------------------------------------------------------------------------
def _child_env(ctx: Context) -> dict[str, str]:
    """The environment of W6/W7 processes: bytecode cached, as after ``pip install``.

    A shell with PYTHONDONTWRITEBYTECODE would make every process compile
    every module from source; the cache goes to the work folder, not the tree.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(ctx.workdir / "pycache")
    return env


def _wall(cmd: list[str], ctx: Context) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ctx.root, check=True, stdout=subprocess.DEVNULL, env=_child_env(ctx))
    return time.perf_counter() - t0


def cold_start(ctx: Context, impls: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    pragmas = json.dumps(ctx.pragmas)
    runs = ctx.sizes.w6_runs
    samples: dict[str, list[float]] = {name: [] for name in impls}
    baseline = []
    cmds = {
        name: [
            ctx.python,
            "-m",
            "benchmarks._child",
            "cold",
            CHILD_KEYS[name],
            str(path),
            "1",
            pragmas,
        ]
        for name in impls
    }
    if ctx.mode != "tiny":  # compile .pyc files, warm the page cache (tiny: not a measurement)
        for cmd in cmds.values():
            _wall(cmd, ctx)
    for r in range(runs):
        baseline.append(_wall([ctx.python, "-c", "pass"], ctx))
        for name, _ in _rotated(impls, r):
            samples[name].append(_wall(cmds[name], ctx))
    values = {name: summarize(s) for name, s in samples.items()}
    for name in impls:
        ctx.log(f"  W6 {name}: {values[name]['median']:.1f} ms")
    mine = values.get(LOCALCHAT)
    record = {
        "id": "W6",
        "name": "cold start: new process, import, open store, read one conversation",
        "unit": "ms",
        "stat": "median",
        "values": values,
        "target": "localchat under 150 ms wall",
        "met": None if mine is None else mine["median"] < 150,
        "figure": "-" if mine is None else f"{mine['median']:.0f} ms",
        "note": f"median of {runs} processes; `python -c pass` alone: "
        f"{statistics.median(baseline) * 1000:.0f} ms.",
    }
    return [record]


# -- W7 ------------------------------------------------------------------------
def export(ctx: Context, impls: dict[str, Any], path: Path, n_messages: int) -> list[dict]:
    pragmas = json.dumps(ctx.pragmas)
    values: dict[str, dict[str, float]] = {}
    for name in impls:
        out = ctx.workdir / f"export-{CHILD_KEYS[name]}.jsonl"
        cmd = [ctx.python, "-m", "benchmarks._child", "export", CHILD_KEYS[name], str(path)]
        proc = subprocess.run(
            [*cmd, str(out), pragmas],
            cwd=ctx.root,
            check=True,
            capture_output=True,
            text=True,
            env=_child_env(ctx),
        )
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        lines = sum(1 for _ in out.open("rb"))
        out.unlink()
        if got["rows"] != n_messages or lines != n_messages:
            raise RuntimeError(f"W7 {name}: exported {got['rows']} rows / {lines} lines")
        values[name] = {
            "median": got["seconds"],
            "peak_rss_mb": got["peak_rss_mb"],
            "rss_before_mb": got["rss_before_mb"],
        }
        ctx.log(f"  W7 {name}: {got['seconds']:.1f} s, peak RSS {got['peak_rss_mb']:.0f} MB")
    label = f"{n_messages:,} messages"
    timing = {
        "id": "W7",
        "name": f"export to JSONL: {label}",
        "unit": "s",
        "stat": "median",
        "values": values,
        "note": "one run per implementation, each in its own process.",
    }
    mine = values.get(LOCALCHAT)
    rss = {
        "id": "W7",
        "name": f"export peak RSS: {label}",
        "unit": "MB",
        "stat": "peak_rss_mb",
        "values": values,
        "target": "localchat peak RSS under 100 MB",
        "met": None if mine is None else mine["peak_rss_mb"] < 100,
        "figure": "-" if mine is None else f"{mine['peak_rss_mb']:.0f} MB",
        "note": "peak RSS (VmHWM) of the exporting process, interpreter and imports included.",
    }
    return [timing, rss]
