"""Schema migrations: drift, round trips, refusal of newer schemas, backups, failures, races."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from playhouse.schema_diff import diff_models

from localchat import MigrationError, SchemaTooNew, get_session, open_store
from localchat.models import ALL_MODELS, Conversation, Message, User
from localchat.schema import MIGRATIONS_DIR, ZERO, backup_path


def _names() -> list[str]:
    return sorted(p.stem for p in MIGRATIONS_DIR.glob("[0-9]*.py"))


def _migrations_dir(tmp_path: Path, extra: dict[str, str]) -> Path:
    """The shipped migrations plus test-only ones, in a folder of the test's own."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    for path in MIGRATIONS_DIR.glob("[0-9]*.py"):
        shutil.copy(path, folder / path.name)
    for name, body in extra.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(body))
    return folder


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _applied(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT name FROM schema_migration ORDER BY id")]
    finally:
        conn.close()


def test_migrated_schema_matches_the_models(db_path):
    store = open_store(db_path)
    store.upgrade()
    with store.session():
        diff = diff_models(store.db, list(ALL_MODELS))
    assert not diff, str(diff)


def test_every_migration_goes_down_and_up_again(db_path):
    store = open_store(db_path)
    assert store.upgrade() == _names()
    with store.session():
        User.create(email="ada@example.org")
    assert store.downgrade(ZERO) == list(reversed(_names()))
    with store.db.connection_context():
        # sqlite_sequence (made by 0006's AUTOINCREMENT) is SQLite's own: it cannot be dropped
        left = store.db.get_tables()
        assert [t for t in left if t not in ("schema_migration", "sqlite_sequence")] == []
    assert store.upgrade() == _names()
    with store.session():
        assert not diff_models(store.db, list(ALL_MODELS))
        assert User.select().count() == 0


def test_upgrade_to_a_target_stops_there(db_path):
    store = open_store(db_path)
    first = _names()[0]
    assert store.upgrade(first) == [first]
    assert [m.name for m in store.migration_status() if m.applied] == [first]


def test_unknown_target_is_refused_before_anything_runs(db_path):
    store = open_store(db_path)
    with pytest.raises(MigrationError, match="unknown migration"):
        store.upgrade("9999_nope")
    assert not db_path.exists()


def test_status_does_not_create_the_database(db_path):
    states = open_store(db_path).migration_status()
    assert [m.name for m in states] == _names() and not any(m.applied for m in states)
    assert not db_path.exists() and not db_path.parent.exists()


def test_database_from_a_newer_localchat_is_refused_and_left_untouched(db_path):
    from localchat import close_all

    open_store(db_path).upgrade()
    close_all()
    conn = sqlite3.connect(db_path)
    conn.execute(
        "INSERT INTO schema_migration (name, applied) VALUES ('9999_future', '2030-01-01')"
    )
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    conn.close()
    before = _digest(db_path)
    with pytest.raises(SchemaTooNew, match="9999_future"):
        with get_session(db_path):
            pass
    with pytest.raises(SchemaTooNew):
        open_store(db_path).upgrade()
    close_all()
    assert _digest(db_path) == before
    wal = db_path.with_name(db_path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


ADD_NICKNAME = """
    from peewee import *

    def up(migrator, db):
        migrator.migrate(migrator.add_column('user', 'nickname', CharField(null=True)))

    def down(migrator, db):
        migrator.migrate(migrator.drop_column('user', 'nickname'))
"""

FAILING = """
    from peewee import *

    def up(migrator, db):
        db.execute_sql('CREATE TABLE half_done (id INTEGER PRIMARY KEY)')
        raise RuntimeError('deliberate failure')
"""


def _seed_users(db_path, n=3):
    """A database at the shipped head, holding ``n`` users."""
    store = open_store(db_path)
    with store.session():
        for i in range(n):
            User.create(email=f"u{i}@example.org")
    store.close()


def test_upgrade_of_a_database_holding_data_takes_a_backup_first(tmp_path, db_path):
    folder = _migrations_dir(tmp_path, {"9001_add_nickname": ADD_NICKNAME})
    _seed_users(db_path)
    store = open_store(db_path, migrations_dir=folder)
    assert store.upgrade() == ["9001_add_nickname"]
    backup = backup_path(store, "9001_add_nickname")
    conn = sqlite3.connect(backup)
    try:
        assert conn.execute("SELECT count(*) FROM user").fetchone() == (3,)
        columns = [r[1] for r in conn.execute("PRAGMA table_info(user)")]
        assert "nickname" not in columns
    finally:
        conn.close()


def test_fresh_database_gets_no_backup(db_path):
    open_store(db_path).upgrade()
    assert list(db_path.parent.glob("*.bak")) == []


def test_failing_migration_leaves_the_database_at_its_previous_version(tmp_path, db_path):
    folder = _migrations_dir(tmp_path, {"9001_add_nickname": ADD_NICKNAME, "9002_broken": FAILING})
    _seed_users(db_path)
    store = open_store(db_path, migrations_dir=folder)
    with pytest.raises(MigrationError, match="9002_broken.*deliberate failure") as info:
        store.upgrade()
    assert "backup" in str(info.value) or ".bak" in str(info.value)
    assert _applied(db_path) == _names()
    conn = sqlite3.connect(db_path)
    try:
        assert "nickname" not in [r[1] for r in conn.execute("PRAGMA table_info(user)")]
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master")]
        assert "half_done" not in tables
        assert conn.execute("SELECT count(*) FROM user").fetchone() == (3,)
    finally:
        conn.close()


REBUILD_CONVERSATION = """
    from peewee import *
    from localchat.search.index import keep_triggers

    def up(migrator, db):
        # add_column_default always rebuilds the table on SQLite; keep_triggers keeps
        # the triggers on it and the one on message that names it (0004).
        with keep_triggers(db, 'conversation'):
            migrator.migrate(migrator.add_column_default('conversation', 'status', 'active'))
"""


def test_rebuilding_a_parent_table_keeps_every_child_row(tmp_path, db_path):
    folder = _migrations_dir(tmp_path, {"9001_rebuild_conversation": REBUILD_CONVERSATION})
    with open_store(db_path).session():
        conv = Conversation.create(title="keep me")
        for i in range(5):
            Message.create(conversation=conv, role="user", content=str(i))
    store = open_store(db_path, migrations_dir=folder)
    assert store.upgrade() == ["9001_rebuild_conversation"]
    with store.session() as s:
        assert Message.select().count() == 5
        assert s.db.pragma("foreign_keys") == 1


def test_migrations_run_in_numeric_not_lexicographic_order(tmp_path, db_path):
    log = tmp_path / "order.log"
    body = f"""
        def up(migrator, db):
            with open({str(log)!r}, 'a') as fh:
                fh.write(__name__ + '\\n')
    """
    folder = _migrations_dir(tmp_path, {"9_nine": body, "10_ten": body})
    open_store(db_path, migrations_dir=folder).upgrade()
    assert log.read_text().split() == ["9_nine", "10_ten"]


SLOW_COUNTED = """
    import time
    from peewee import *

    def up(migrator, db):
        db.execute_sql('CREATE TABLE IF NOT EXISTS ran (id INTEGER PRIMARY KEY)')
        db.execute_sql('INSERT INTO ran DEFAULT VALUES')
        time.sleep(1.0)
        migrator.migrate(migrator.add_column('user', 'karma', IntegerField(null=True)))
"""

RACER = """
import sys, time
from localchat import open_store
go = float(sys.argv[3])
while time.time() < go:
    time.sleep(0.005)
print(open_store(sys.argv[1], migrations_dir=sys.argv[2]).upgrade())
"""


def test_two_processes_migrating_one_database_apply_each_migration_once(tmp_path, db_path):
    import time

    folder = _migrations_dir(tmp_path, {"9001_slow": SLOW_COUNTED})
    _seed_users(db_path)
    store = open_store(db_path, migrations_dir=folder)
    store.close()
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    go = str(time.time() + 1.5)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(db_path), str(folder), go],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    outputs = sorted(out.strip() for out, _ in results)
    assert outputs == ["['9001_slow']", "[]"], results
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT count(*) FROM ran").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM user").fetchone() == (3,)
    finally:
        conn.close()
    assert _applied(db_path).count("9001_slow") == 1
    # the copy taken before the upgrade holds the old version, not the migrated one
    assert _applied(backup_path(store, "9001_slow")) == _names()


def test_down_with_an_unknown_target_is_refused(db_path):
    store = open_store(db_path)
    store.upgrade()
    with pytest.raises(MigrationError, match="not an applied migration"):
        store.downgrade("0000_nothing")
