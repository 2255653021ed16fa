"""The benchmark command runs end to end at a tiny size (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = {"W1", "W2", "W3", "W4", "W5", "W6", "W7"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--tiny", "--quiet", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return out, proc


def test_tiny_benchmark_run_succeeds(tiny_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    _, proc = tiny_run
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


def test_tiny_run_writes_every_workload_for_localchat_and_sqlite3(
    tiny_run: tuple[Path, subprocess.CompletedProcess],
) -> None:
    out, _ = tiny_run
    result = json.loads((out / "performance-tiny.json").read_text())
    records = result["workloads"]
    assert WORKLOADS <= {r["id"] for r in records}
    expected = {"sqlite3", "localchat"}
    if importlib.util.find_spec("sqlalchemy") is not None:
        expected.add("SQLAlchemy ORM")
    for r in records:
        if r["id"] in WORKLOADS:
            assert expected <= set(r["values"]), r["id"]
    assert {"date", "localchat", "peewee", "sqlite", "python"} <= set(result["meta"])


def test_tiny_run_prints_table_and_target_verdicts(
    tiny_run: tuple[Path, subprocess.CompletedProcess],
) -> None:
    out, proc = tiny_run
    table = (out / "performance-tiny.md").read_text()
    assert "| W1 append" in table and "localchat / sqlite3" in table
    for wid in ("W1", "W2", "W3", "W4", "W6", "W7"):
        assert f"| {wid} | " in table  # its target row: met or missed
    assert "| W1 append" in proc.stdout


def test_tiny_run_draws_the_chart_when_matplotlib_is_installed(
    tiny_run: tuple[Path, subprocess.CompletedProcess],
) -> None:
    out, _ = tiny_run
    chart = out / "performance-tiny.png"
    if importlib.util.find_spec("matplotlib") is None:
        assert not chart.exists()
    else:
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_chat_window_benchmark_runs_small_and_checks_its_own_results(capsys) -> None:
    from benchmarks import bench_chat_window

    assert bench_chat_window.main(["--messages", "200", "--tokens", "100", "--chunks", "10",
                                   "--opens", "5"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "found by search: True" in out and "current branch" in out


def test_the_async_benchmark_runs_small_and_reports_every_ratio(capsys, tmp_path) -> None:
    from benchmarks import bench_async

    assert bench_async.main(["--conversations", "20", "--per-conversation", "3", "--calls",
                             "20", "--rounds", "2", "--tasks", "10",
                             "--workdir", str(tmp_path)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    for w in ("W1", "W3", "W4"):
        assert f"  {w}: sync " in out and "async/sync" in out
    assert "10 tasks appending at once" in out and "event-loop stall" in out
