"""What is not localchat's is never modified: foreign databases, empty files, other files."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from localchat import (
    ForeignDatabase,
    StoreCorrupt,
    get_session,
    init_db,
    open_store,
)
from localchat.cli import main
from localchat.repository import create_user


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file in ``folder`` and its hash (no SQLite connection is open on them)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def _other_app_db(path: Path) -> Path:
    conn = sqlite3.connect(str(path))
    conn.execute("CREATE TABLE user (id INTEGER PRIMARY KEY, nickname TEXT)")
    conn.execute("CREATE TABLE settings (key TEXT, value TEXT)")
    conn.execute("INSERT INTO user (nickname) VALUES ('someone')")
    conn.commit()
    conn.close()
    return path


def _other_history_db(path: Path) -> Path:
    conn = sqlite3.connect(str(path))
    conn.execute("CREATE TABLE schema_migration (id INTEGER PRIMARY KEY, name TEXT, applied TEXT)")
    conn.execute("INSERT INTO schema_migration (name, applied) VALUES ('001_their_app', '')")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.commit()
    conn.close()
    return path


def _empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _text_file(path: Path) -> Path:
    path.write_text("my shopping list\n" * 100)
    return path


COMMANDS = [
    ["init"],
    ["status"],
    ["status", "--json"],
    ["migrate", "status"],
    ["migrate", "up"],
    ["migrate", "down", "--yes"],
    ["files", "verify"],
    ["files", "repair", "--apply"],
    ["search", "anything"],
    ["export"],
]


@pytest.mark.parametrize(
    "make", [_other_app_db, _other_history_db, _empty_file, _text_file], ids=lambda f: f.__name__
)
@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_every_command_leaves_a_file_that_is_not_localchats_byte_identical(
    tmp_path, capsys, make, argv
):
    path = make(tmp_path / "other.db")
    before = _snapshot(tmp_path)
    code = main(["--db", str(path), *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and str(path) in err
    assert _snapshot(tmp_path) == before  # no byte changed, no -wal/-shm/files/ created


def test_another_apps_database_is_refused_by_the_library_naming_its_tables(tmp_path):
    path = _other_app_db(tmp_path / "other.db")
    before = _snapshot(tmp_path)
    with pytest.raises(ForeignDatabase, match=r"tables: settings, user"):
        init_db(path)
    with pytest.raises(ForeignDatabase):
        with get_session(path) as s:
            create_user(s, email="ada@example.org")
    with pytest.raises(ForeignDatabase):
        with get_session(path, readonly=True):
            pass
    with pytest.raises(ForeignDatabase):
        open_store(path).migration_status()
    open_store(path).close()
    assert _snapshot(tmp_path) == before


def test_a_zero_byte_file_is_refused_and_stays_empty(tmp_path):
    path = _empty_file(tmp_path / "chat.db")
    with pytest.raises(ForeignDatabase, match="zero-byte"):
        init_db(path)
    open_store(path).close()
    assert path.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat.db"]


def test_a_file_that_is_not_sqlite_is_store_corrupt_naming_it(tmp_path):
    path = _text_file(tmp_path / "notes.db")
    with pytest.raises(StoreCorrupt, match="not a SQLite database") as info:
        init_db(path)
    assert str(path) in str(info.value)


def test_an_empty_sqlite_database_may_become_a_store(tmp_path):
    path = tmp_path / "blank.db"
    sqlite3.connect(str(path)).execute("PRAGMA user_version = 0").connection.close()
    sqlite3.connect(str(path)).execute("VACUUM").connection.close()
    assert init_db(path)[0] == "0001_initial"


def test_read_only_commands_leave_a_localchat_store_byte_identical(tmp_path, capsys):
    path = tmp_path / "chat.db"
    with get_session(path) as s:
        create_user(s, email="ada@example.org")
    open_store(path).close()
    before = _snapshot(tmp_path)
    for argv in (["status"], ["migrate", "status"], ["path"], ["files", "verify"],
                 ["search", "ada"], ["export"]):  # fmt: skip
        assert main(["--db", str(path), *argv]) == 0, capsys.readouterr().err
        open_store(path).close()
        assert _snapshot(tmp_path) == before, argv


def test_a_new_store_is_never_seen_half_made(tmp_path):
    """The file appears in WAL mode at once: no zero-byte or rollback-mode moment."""
    path = tmp_path / "new.db"
    init_db(path)
    open_store(path).close()
    assert path.stat().st_mode & 0o777 == 0o600
    conn = sqlite3.connect(str(path))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
