"""The benchmark command runs end to end at a tiny size (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import peewee
import pytest

from localchat.models import Message

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


def test_the_big_store_builds_small_and_keeps_every_rule_of_a_store(tmp_path) -> None:
    from benchmarks import big_store
    from benchmarks.impl_raw import preview
    from localchat import open_store
    from localchat.maintenance import check_store
    from localchat.repository import (
        get_current_leaf,
        list_all_conversations,
        list_children,
        list_trash,
    )
    from localchat.search import search_messages

    path = tmp_path / "big.db"
    assert big_store.main(["--out", str(path), "--conversations", "30", "--messages", "1500",
                           "--users", "2", "--documents", "3"]) == 0  # fmt: skip
    assert big_store.main(["--out", str(path), "--conversations", "3", "--messages", "6"]) == 2
    store = open_store(path)
    assert check_store(store, full=True).ok
    assert store.table_counts()["message"] == 1500 and store.table_counts()["document"] == 3
    flipped = versions = 0
    with store.read_session() as s:
        convs = list_all_conversations(s, limit=None, include_trashed=True)
        assert {c.user_id for c in convs} == {1, 2}
        assert any(c.pinned for c in convs) and any(c.tags for c in convs)
        assert list_trash(s).conversations
        for conv in convs:
            newest = conv.messages.order_by(Message.created_at.desc()).first()
            shown = preview(newest.content)
            assert (conv.updated_at, conv.last_message) == (newest.created_at, shown)
            leaf = get_current_leaf(s, conv.id)
            assert leaf.conversation_id == conv.id and list_children(s, leaf.id) == []
            flipped += leaf.id != newest.id
            versions += (
                Message.select()
                .where(Message.conversation == conv.id, Message.parent.is_null(False))
                .group_by(Message.parent)
                .having(peewee.fn.COUNT(Message.id) > 1)
                .count()
            )
        assert flipped and versions
        word = newest.content.split()[0].strip(".")
        assert search_messages(s, word)


def test_the_app_queries_benchmark_runs_small(capsys) -> None:
    from benchmarks import bench_app_queries

    assert bench_app_queries.main(["--conversations", "20", "--messages", "400", "--opens", "1",
                                   "--runs", "2", "--switches", "5"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "cold open" in out and "first page" in out and "title_contains" in out
    assert "switch to a conversation" in out and "sqlite3" in out


def test_the_web_benchmark_runs_small_with_no_failed_request(capsys) -> None:
    pytest.importorskip("fastapi", reason="the web extra: pip install 'localchat[web]'")
    from benchmarks import bench_web

    assert bench_web.main(["--requests", "12", "--rounds", "1", "--users", "2",
                           "--conversations", "2"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "failed requests: 0 (database is locked: 0)" in out and "p95" in out


def test_the_chat_app_benchmark_opens_and_switches_on_a_small_store(capsys) -> None:
    pytest.importorskip("textual", reason="the chat app needs the app extra")
    from benchmarks import bench_chat_app

    assert bench_chat_app.main(["--conversations", "12", "--messages", "240",
                                "--switches", "4"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    rows = re.search(r"open to a usable sidebar \((\d+) rows\)", out)
    assert rows and 1 <= int(rows.group(1)) <= 12  # the generator trashes some
    assert "switch conversations" in out


def test_the_async_benchmark_runs_small_and_reports_every_ratio(capsys, tmp_path) -> None:
    from benchmarks import bench_async

    assert bench_async.main(["--conversations", "20", "--per-conversation", "3", "--calls",
                             "20", "--rounds", "2", "--tasks", "10",
                             "--workdir", str(tmp_path)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    for w in ("W1", "W3", "W4"):
        assert out.count(f"  {w}: sync ") == 2 and "async/sync" in out
    assert "inside one open session" in out
    assert "10 tasks appending at once" in out and "event-loop stall" in out
