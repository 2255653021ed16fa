"""Results: one record per workload, rendered as a Markdown table, JSON and a PNG chart.

A record (also what an extra ``benchmarks/bench_*.py`` module returns)::

    {"id": "W3", "name": "open conversation: latest 50 messages (100k)",
     "unit": "ms", "stat": "median",            # which figure the ratio compares
     "values": {"sqlite3": {"median": 0.05, "p95": 0.07, "n": 1000}, "localchat": {...}},
     "target": "<= 2x sqlite3 and p95 < 1 ms", "met": True, "figure": "1.4x, p95 0.3 ms",
     "note": ""}

Ratios are always ``impl / sqlite3`` on ``stat`` in the same run.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "BASELINE",
    "summarize",
    "ratio",
    "markdown_table",
    "targets_table",
    "write_json",
    "write_chart",
    "update_docs",
]

BASELINE = "sqlite3"
IMPL_ORDER = ("sqlite3", "SQLAlchemy ORM", "localchat")
START, END = "<!-- results:start -->", "<!-- results:end -->"
_STAT_LABELS = {"total_s": "total", "peak_rss_mb": "peak"}


def summarize(samples: Sequence[float], *, scale: float = 1000.0) -> dict[str, float]:
    """Median, p95, mean, total (in seconds) and count of timings given in seconds."""
    ordered = sorted(samples)
    n = len(ordered)
    p95 = ordered[min(n - 1, max(0, round(0.95 * n) - 1))]
    return {
        "median": statistics.median(ordered) * scale,
        "p95": p95 * scale,
        "mean": statistics.fmean(ordered) * scale,
        "total_s": sum(ordered),
        "n": n,
    }


def ratio(record: dict[str, Any], impl: str) -> float | None:
    values = record["values"]
    if impl not in values or BASELINE not in values:
        return None
    base = values[BASELINE].get(record["stat"])
    mine = values[impl].get(record["stat"])
    if not base or mine is None:
        return None
    return float(mine) / float(base)


def _impls(records: list[dict[str, Any]]) -> list[str]:
    seen = {impl for r in records for impl in r["values"]}
    ordered = [i for i in IMPL_ORDER if i in seen]
    return ordered + sorted(seen - set(ordered))


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def markdown_table(records: list[dict[str, Any]]) -> str:
    """Medians (or the record's ``stat``) per implementation, and ratios to sqlite3."""
    impls = _impls(records)
    others = [i for i in impls if i != BASELINE]
    head = ["workload", "figure", *impls, *[f"{i} / {BASELINE}" for i in others]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        stat = r["stat"]
        label = f"{_STAT_LABELS.get(stat, stat)} {r['unit']}"
        cells = [f"{r['id']} {r['name']}", label]
        cells += [_fmt(r["values"].get(i, {}).get(stat)) for i in impls]
        cells += [_fmt(ratio(r, i)) + ("x" if ratio(r, i) is not None else "") for i in others]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets_table(records: list[dict[str, Any]]) -> str:
    """Each target, met or missed, with the figure that decides it."""
    lines = ["| workload | target | result | figure |", "|---|---|---|---|"]
    for r in records:
        if not r.get("target"):
            continue
        met = r.get("met")
        mark = "met" if met else ("missed" if met is not None else "n/a")
        lines.append(f"| {r['id']} | {r['target']} | **{mark}** | {r.get('figure', '')} |")
    return "\n".join(lines)


def write_json(path: Path, meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
    for r in records:
        r["ratios"] = {i: ratio(r, i) for i in r["values"] if i != BASELINE}
    path.write_text(json.dumps({"meta": meta, "workloads": records}, indent=2) + "\n")


def write_chart(path: Path, meta: dict[str, Any], records: list[dict[str, Any]]) -> bool:
    """Bars of time relative to sqlite3 per workload; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    timed = [r for r in records if r["unit"] in ("ms", "s") and BASELINE in r["values"]]
    impls = _impls(timed)
    others = [i for i in impls if i != BASELINE]
    fig, ax = plt.subplots(figsize=(max(7.0, 0.9 * len(timed) + 3), 4.2), dpi=110)
    width = 0.8 / max(1, len(impls))
    colors = {"sqlite3": "#9e9e9e", "SQLAlchemy ORM": "#d08c3c", "localchat": "#2f6db5"}
    for k, impl in enumerate(impls):
        xs, ys = [], []
        for j, r in enumerate(timed):
            value = 1.0 if impl == BASELINE else ratio(r, impl)
            if value is not None:
                xs.append(j + (k - (len(impls) - 1) / 2) * width)
                ys.append(value)
        bars = ax.bar(xs, ys, width, label=impl, color=colors.get(impl))
        if impl in others:
            ax.bar_label(bars, labels=[f"{y:.1f}" for y in ys], fontsize=7, padding=1)
    for j, r in enumerate(timed):  # localchat's target, where it is a ratio
        if r.get("target_ratio"):
            ax.hlines(r["target_ratio"], j - 0.45, j + 0.45, colors="#c0392b", linestyles="--")
    ax.plot([], [], color="#c0392b", linestyle="--", label="localchat target")
    ax.axhline(1.0, color="#555555", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(timed)), [r.get("label", r["id"]) for r in timed])
    ax.set_ylabel(f"time / {BASELINE} (log scale, lower is better)")
    ax.set_title(
        f"localchat {meta.get('localchat', '')} vs sqlite3 and SQLAlchemy "
        f"({meta.get('mode', '')}, {meta.get('date', '')})",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def update_docs(doc: Path, block: str) -> bool:
    """Replace the generated block between the results markers of ``doc``."""
    if not doc.exists():
        return False
    text = doc.read_text()
    if START not in text or END not in text:
        return False
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{block.strip()}\n{END}{tail}")
    return True
