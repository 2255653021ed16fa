"""Destructive operations keep a way back: down, drop and reset copy the store first."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from localchat import close_all, drop_db, get_session, init_db, open_store, reset_db
from localchat.cli import main
from localchat.repository import create_user
from localchat.schema import ZERO, backup_path


def _users_in(path: Path) -> list[str]:
    conn = sqlite3.connect(str(path))
    try:
        return [r[0] for r in conn.execute("SELECT email FROM user ORDER BY id")]
    finally:
        conn.close()


@pytest.fixture
def full(tmp_path) -> Path:
    path = tmp_path / "chat.db"
    with get_session(path) as s:
        create_user(s, email="ada@example.org")
        create_user(s, email="bob@example.org")
    return path


def test_drop_db_copies_the_store_first_and_the_copy_opens(full):
    newest = [m.name for m in open_store(full).migration_status()][-1]
    drop_db(full)
    copy = backup_path(open_store(full), f"revert-{newest}")
    assert _users_in(copy) == ["ada@example.org", "bob@example.org"]
    assert copy.stat().st_mode & 0o777 == 0o600
    with open_store(full).db.connection_context():
        left = set(open_store(full).db.get_tables())
    assert left <= {"schema_migration", "sqlite_sequence"}  # SQLite never drops the latter


def test_reset_twice_keeps_the_copy_of_the_data(full):
    reset_db(full)
    reset_db(full)  # the second copy is of an empty store: the first must survive
    copies = sorted(full.parent.glob("chat.db.pre-revert-*.bak"))
    assert len(copies) == 2
    held = [_users_in(c) for c in copies]
    assert ["ada@example.org", "bob@example.org"] in held and [] in held


def test_downgrade_to_a_target_ends_there_and_copies_first(full):
    store = open_store(full)
    names = [m.name for m in store.migration_status()]
    assert store.downgrade(names[1]) == list(reversed(names[2:]))
    assert [m.name for m in store.migration_status() if m.applied] == names[:2]
    assert _users_in(backup_path(store, f"revert-{names[-1]}")) == [
        "ada@example.org",
        "bob@example.org",
    ]
    assert store.downgrade(names[1]) == []  # already there
    assert store.downgrade(ZERO) == list(reversed(names[:2]))


def test_cli_migrate_down_says_what_is_lost_and_refuses_without_confirmation(
    full, capsys, monkeypatch
):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal: nobody to ask
    open_store(full).close()  # checkpointed: the file alone holds everything
    before = full.read_bytes()
    assert main(["--db", str(full), "migrate", "down", "--target", ZERO]) == 2
    err = capsys.readouterr().err
    assert "Every localchat table is dropped" in err and "2 user" in err
    assert "A copy is taken first" in err and "pass --yes" in err
    open_store(full).close()
    assert full.read_bytes() == before
    assert not list(full.parent.glob("*.bak"))


def test_cli_migrate_down_asks_and_a_no_changes_nothing(full, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    assert main(["--db", str(full), "migrate", "down"]) == 1
    assert "nothing was changed" in capsys.readouterr().out
    assert main(["--db", str(full), "migrate", "status"]) == 0


def test_cli_migrate_down_with_yes_reverts_and_leaves_a_copy(full, capsys):
    assert main(["--db", str(full), "migrate", "down", "--target", ZERO, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "reverted 0001_initial" in out
    copies = list(full.parent.glob("chat.db.pre-revert-*.bak"))
    assert len(copies) == 1 and len(_users_in(copies[0])) == 2


def test_a_backup_killed_half_way_leaves_nothing_after_the_next_open(full):
    code = textwrap.dedent(
        f"""
        import os, signal, sqlite3
        from localchat import open_store, schema
        real = sqlite3.connect
        class Dying:
            def __init__(self, conn): self.conn = conn
            def backup(self, dst):
                self.conn.backup(dst, pages=1,
                                 progress=lambda *a: os.kill(os.getpid(), signal.SIGKILL))
            def close(self): self.conn.close()
        first = []
        def connect(path, *a, **k):
            conn = real(path, *a, **k)
            if not first:
                first.append(1)
                return Dying(conn)
            return conn
        schema.sqlite3.connect = connect
        schema._backup(open_store({str(full)!r}), "0099_test")
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    left = sorted(p.name for p in full.parent.iterdir() if ".partial" in p.name)
    assert left and left[0].endswith(".partial")  # what the crash left behind
    close_all()  # as a new process would: the next open cleans it, under the write lock
    with get_session(full) as s:
        create_user(s, email="cy@example.org")
    assert not [p for p in full.parent.iterdir() if ".partial" in p.name]
    assert init_db(full) == []
