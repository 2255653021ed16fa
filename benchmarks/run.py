"""Run every benchmark and write the table, the JSON and the chart.

    python -m benchmarks                 # full run (~5 min on 2 cores): updates docs/
    python -m benchmarks --quick         # smaller sizes, results in benchmarks/results/
    python -m benchmarks --tiny --out /tmp/b   # seconds; what the smoke test runs
    python -m benchmarks --only W1,W3 --no-extras

Extra benchmark modules (``benchmarks/bench_*.py``) are discovered and run after
W1..W7 when they define ``run(ctx: Context) -> list[dict]`` returning records
in the shape ``benchmarks/report.py`` documents. ``ctx.store(conversations,
per_conversation)`` hands them the canonical populated stores (built once).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import data, report, workloads

__all__ = ["Context", "main", "ROOT"]

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7")
IMPL_MODULES = {
    "sqlite3": "impl_raw",
    "sqlalchemy": "impl_sqlalchemy",
    "localchat": "impl_localchat",
}


@dataclass
class Context:
    """What a benchmark module gets: sizes, folders, the template and canonical stores."""

    mode: str
    sizes: data.Sizes
    workdir: Path
    template: Path
    pragmas: list[str]
    python: str = sys.executable
    root: Path = ROOT
    quiet: bool = False
    impls: dict[str, Any] = field(default_factory=dict)
    _stores: dict[tuple[int, int], Path] = field(default_factory=dict)

    def log(self, message: str) -> None:
        if not self.quiet:
            print(message, flush=True)

    def store(self, n_conversations: int, per_conversation: int) -> Path:
        """The canonical store of that shape (read-only for benchmarks), built once."""
        key = (n_conversations, per_conversation)
        if key not in self._stores:
            t0 = time.perf_counter()
            path = self.workdir / f"store-{n_conversations}x{per_conversation}.db"
            data.build_store(
                self.template,
                path,
                n_conversations=n_conversations,
                per_conversation=per_conversation,
            )
            self._stores[key] = path
            n = n_conversations * per_conversation
            self.log(f"  (built a {n:,}-message store in {time.perf_counter() - t0:.1f} s)")
        return self._stores[key]

    def small_store(self) -> Path:
        """W2's data: what W3/W4 read."""
        s = self.sizes
        return self.store(s.w2_conversations, s.w2_messages // s.w2_conversations)

    def large_store(self) -> Path:
        """``growth`` times W2's data: what W5 and W7 read."""
        s = self.sizes
        return self.store(s.w2_conversations * s.growth, s.w2_messages // s.w2_conversations)


def _load_impls(wanted: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    impls, skipped = {}, []
    for key in wanted:
        try:
            module = importlib.import_module(f"benchmarks.{IMPL_MODULES[key]}")
        except ImportError as exc:
            skipped.append(f"{key} skipped: {exc} (pip install -e '.[bench]')")
            continue
        impls[module.NAME] = module
    if report.BASELINE not in impls:
        raise SystemExit("the sqlite3 baseline cannot be skipped")
    return impls, skipped


def _versions(mode: str, started: dt.datetime) -> dict[str, Any]:
    import peewee

    import localchat

    meta: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "mode": mode,
        "localchat": localchat.__version__,
        "peewee": peewee.__version__,
        "sqlite": sqlite3.sqlite_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    try:
        import sqlalchemy

        meta["sqlalchemy"] = sqlalchemy.__version__
    except ImportError:
        pass
    return meta


def _extras(ctx: Context) -> list[tuple[str, Callable[[Context], list[dict[str, Any]]]]]:
    found = []
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        module = importlib.import_module(f"benchmarks.{path.stem}")
        fn = getattr(module, "run", None)
        if callable(fn):
            found.append((path.stem, fn))
        else:
            ctx.log(f"  ({path.stem}: no run(ctx) function; skipped)")
    return found


def _run_workloads(ctx: Context, only: set[str]) -> list[dict[str, Any]]:
    impls, s = ctx.impls, ctx.sizes
    records: list[dict[str, Any]] = []
    if "W1" in only:
        ctx.log("W1 append")
        records += workloads.append(ctx, impls)
    if "W2" in only:
        ctx.log("W2 bulk import")
        records += workloads.bulk_import(ctx, impls)
    small_open = small_list = None
    if only & {"W3", "W4", "W5"}:
        ctx.log("W3/W4 reads")
        small_open, small_list = workloads.reads(
            ctx, impls, ctx.small_store(), s.w2_conversations, f"{s.w2_messages:,} messages"
        )
        records += [
            workloads.read_targets(small_open, "W3"),
            workloads.read_targets(small_list, "W4"),
        ]
    if "W5" in only and small_open is not None and small_list is not None:
        ctx.log("W5 growth")
        n_conv = s.w2_conversations * s.growth
        big_open, big_list = workloads.reads(
            ctx, impls, ctx.large_store(), n_conv, f"{s.w2_messages * s.growth:,} messages"
        )
        records += [
            workloads.growth_targets(big_open, "W5", small_open),
            workloads.growth_targets(big_list, "W5", small_list),
        ]
    if "W6" in only:
        ctx.log("W6 cold start")
        records += workloads.cold_start(ctx, impls, ctx.small_store())
    if "W7" in only:
        ctx.log("W7 export")
        records += workloads.export(ctx, impls, ctx.large_store(), s.w2_messages * s.growth)
    return records


def _block(meta: dict[str, Any], records: list[dict[str, Any]], chart: str | None) -> str:
    versions = ", ".join(
        f"{k} {meta[k]}"
        for k in ("localchat", "peewee", "sqlalchemy", "sqlite", "python")
        if k in meta
    )
    lines = [
        f"Run of {meta['date']} (`{meta['command']}`, mode {meta['mode']}, "
        f"{meta['elapsed_s']:.0f} s) on {meta['platform']}, {meta['cpus']} CPUs; {versions}.",
        "",
        report.markdown_table(records),
        "",
        report.targets_table(records),
    ]
    notes = [f"- {r['id']}: {r['note']}" for r in records if r.get("note")]
    if notes:
        lines += ["", *notes]
    if chart:
        lines += ["", f"![time relative to sqlite3 per workload]({chart})"]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    size.add_argument("--tiny", action="store_true", help="tiny sizes: checks that it all runs")
    p.add_argument("--out", type=Path, help="where results go (default: docs/ for a full run)")
    p.add_argument("--only", help="comma-separated workloads, e.g. W1,W3 (default: all)")
    p.add_argument(
        "--impls",
        default="sqlite3,sqlalchemy,localchat",
        help="comma-separated: sqlite3,sqlalchemy,localchat",
    )
    p.add_argument("--no-extras", action="store_true", help="skip benchmarks/bench_*.py")
    p.add_argument("--keep", action="store_true", help="keep the work folder and its stores")
    p.add_argument("--workdir", type=Path, help="work folder (default: a temporary one)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the tables")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    out = args.out or (ROOT / "docs" if mode == "full" else ROOT / "benchmarks" / "results")
    out.mkdir(parents=True, exist_ok=True)
    only = set(args.only.upper().split(",")) if args.only else set(WORKLOADS)
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="localchat-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    impls, skipped = _load_impls(args.impls.split(","))
    ctx = Context(mode, data.SIZES[mode], workdir, data.make_template(workdir), data.PRAGMAS)
    ctx.quiet, ctx.impls = args.quiet, impls
    for line in skipped:
        ctx.log(line)
    failures = 0
    try:
        records = _run_workloads(ctx, only)
        if not args.no_extras:
            for name, fn in _extras(ctx):
                ctx.log(f"{name}")
                try:
                    records += fn(ctx)
                except Exception:  # one broken extra must not hide the rest
                    failures += 1
                    traceback.print_exc()
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    meta = _versions(mode, started)
    meta["elapsed_s"] = time.perf_counter() - t0
    meta["command"] = "python -m benchmarks" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    meta["sizes"] = dataclasses.asdict(ctx.sizes)
    stem = "performance" if mode == "full" else f"performance-{mode}"
    report.write_json(out / f"{stem}.json", meta, records)
    chart = out / f"{stem}.png"
    has_chart = report.write_chart(chart, meta, records)
    block = _block(meta, records, chart.name if has_chart else None)
    print()
    print(block)
    if mode == "full" and out.resolve() == (ROOT / "docs").resolve():
        if report.update_docs(ROOT / "docs" / "performance.md", block):
            print("\nupdated docs/performance.md")
    if mode != "full":
        (out / f"{stem}.md").write_text(block + "\n")
    print(json.dumps({"elapsed_s": round(meta["elapsed_s"], 1)}))
    return 1 if failures else 0
