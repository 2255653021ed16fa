"""The `localchat` command: init, status, path, migrate, and its error contract."""

from __future__ import annotations

import importlib.util
import json
import sqlite3

import pytest

from localchat import StoreBusy, cli
from localchat.cli import build_parser, main
from localchat.models import ALL_MODELS
from localchat.schema import MIGRATIONS_DIR


@pytest.fixture
def xdg(tmp_path, monkeypatch):
    home = tmp_path / "xdg-empty"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home


def test_init_creates_the_store_in_the_data_dir_with_every_table(xdg, capsys):
    assert main(["init"]) == 0
    path = xdg / "localchat" / "localchat.db"
    out = capsys.readouterr().out
    newest = max(p.stem for p in MIGRATIONS_DIR.glob("[0-9]*.py"))
    assert str(path) in out and f"schema version: {newest}" in out
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert {m._meta.table_name for m in ALL_MODELS} <= tables
    for model in ALL_MODELS:
        assert f"  {model._meta.table_name} " in out


def test_init_twice_has_nothing_to_do(xdg, capsys):
    main(["init"])
    capsys.readouterr()
    assert main(["init"]) == 0
    assert "nothing to do." in capsys.readouterr().out


def test_app_option_selects_another_store(xdg, capsys):
    assert main(["--app", "notes-app", "init"]) == 0
    assert (xdg / "notes-app" / "localchat.db").is_file()
    assert not (xdg / "localchat").exists()


def test_status_json_reports_without_creating_the_database(xdg, capsys):
    assert main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["exists"] is False
    assert report["schema_version"] == "none"
    assert report["pending_migrations"][0] == "0001_initial"
    assert not xdg.exists()


def test_status_json_counts_rows_after_init(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    main(["--db", db, "init"])
    capsys.readouterr()
    assert main(["status", "--db", db, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pending_migrations"] == []
    assert report["tables"]["user"] == 0 and report["path"] == db


def test_path_prints_database_and_files_folder_and_creates_nothing(xdg, capsys):
    assert main(["path"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        str(xdg / "localchat" / "localchat.db"),
        str(xdg / "localchat" / "localchat.db-files"),
    ]
    assert not xdg.exists()


def test_migrate_status_exits_1_while_migrations_are_pending(tmp_path, capsys):
    db = str(tmp_path / "m.db")
    assert main(["migrate", "status", "--db", db]) == 1
    assert "[pending] 0001_initial" in capsys.readouterr().out
    assert main(["migrate", "up", "--db", db]) == 0
    assert main(["migrate", "status", "--db", db]) == 0
    assert "[applied] 0001_initial" in capsys.readouterr().out


def test_migrate_down_to_a_target_ends_at_it(tmp_path, capsys):
    db = str(tmp_path / "m.db")
    main(["migrate", "up", "--db", db])
    capsys.readouterr()
    assert main(["migrate", "down", "--target", "0001_initial", "--yes", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "reverted 0002_full_text_search" in out and "reverted 0001_initial" not in out
    assert main(["migrate", "status", "--db", db]) == 1
    assert "[applied] 0001_initial" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["--db", "sqlite://relative.db", "status"],
        ["migrate", "up", "--target", "9999_nope"],
        ["--db", "mysql://u@h/db", "init"],
    ],
)
def test_errors_print_one_line_and_exit_2(xdg, capsys, argv):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def _text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 100)
    return path


def _store(tmp_path):
    path = tmp_path / "chat.db"
    assert main(["--db", str(path), "init"]) == 0
    return path


_HAS_PG_DRIVER = importlib.util.find_spec("psycopg2") is not None

# Each builds (argv, text the error line must hold) from tmp_path. Without the
# PostgreSQL driver (the bare `.[test]` install) the refused connection is
# instead the missing driver, which must name the extra to install.
OS_AND_DRIVER_FAILURES = {
    "a text file as the store": lambda t: (
        ["--db", str(_text_file(t)), "status"], f"{_text_file(t)} is not a SQLite database"),
    "export to a missing folder": lambda t: (
        ["--db", str(_store(t)), "export", "--out", str(t / "missing" / "x.jsonl")],
        f"{t / 'missing' / 'x.jsonl'}: No such file or directory"),
    "export to a directory": lambda t: (
        ["--db", str(_store(t)), "export", "--out", str(t)], f"{t}: Is a directory"),
    "a store under a file": lambda t: (
        ["--db", str(_text_file(t) / "chat.db"), "init"], "Not a directory"),
    "PostgreSQL refusing the connection": lambda t: (
        ["--db", "postgresql://postgres@localhost:1/lc", "status"],
        "port 1" if _HAS_PG_DRIVER else "pip install 'localchat[postgres]'"),
}  # fmt: skip


@pytest.mark.parametrize("case", OS_AND_DRIVER_FAILURES)
def test_os_and_database_failures_print_one_line_and_exit_2(tmp_path, capsys, case):
    argv, expected = OS_AND_DRIVER_FAILURES[case](tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "exc", [StoreBusy("s.db is busy"), PermissionError(13, "Permission denied", "x")]
)
def test_localchat_and_os_errors_exit_2_and_reraise_under_verbose(
    tmp_path, capsys, monkeypatch, exc
):
    def fail(args):
        raise exc

    monkeypatch.setattr(cli, "cmd_status", fail)
    db = str(tmp_path / "s.db")
    assert main(["--db", db, "status"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    with pytest.raises(type(exc)):
        main(["--db", db, "-v", "status"])


@pytest.mark.parametrize("command", ["export", "search"])
def test_a_conversation_id_past_64_bits_finds_nothing(tmp_path, capsys, command):
    db = str(_store(tmp_path))
    argv = ["--db", db, command, *(["hello"] if command == "search" else [])]
    assert main([*argv, "--conversation", str(2**64)]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_every_command_has_help_text():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        assert command.description, f"{name} has no description"


def test_a_reader_leaving_the_pipe_early_is_not_an_error(tmp_path):
    import os
    import subprocess
    import sys

    db = str(tmp_path / "p.db")
    assert main(["--db", db, "init"]) == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from localchat.cli import main; raise SystemExit(main())",
         "--db", db, "status"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.close()  # like `| head -0`: nobody reads
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.wait() == 0, err
    assert "error" not in err and "Traceback" not in err
