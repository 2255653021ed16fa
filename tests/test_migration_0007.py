"""Migration 0007: ``audit_log.model_used`` may be NULL (no app's model is assumed).

On SQLite the column change rebuilds the table; the rebuild keeps every row,
index, trigger and view and the largest id ever used. On PostgreSQL the column
is altered in place.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from localchat import drop_db, open_store
from localchat.config import resolve
from localchat.database import Store
from localchat.repository import log_generation

NAME = "0007_audit_model_default"
BEFORE = "0006_ids_never_reused"


def _sqlite(path: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        with conn:
            return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _not_null(path: Path) -> bool:
    columns = {row[1]: row[3] for row in _sqlite(path, 'PRAGMA table_info("audit_log")')}
    return bool(columns["model_used"])


def _old_store(path: Path) -> Store:
    """A store at 0006 holding three entries, the newest deleted, and an app's trigger and view."""
    store = Store(resolve(path))
    store.upgrade(BEFORE)
    store.close()
    for number in range(3):
        _sqlite(
            path,
            "INSERT INTO audit_log (uuid, user_id, document_type, document_version, input_data, "
            "generated_text, model_used, status, created_at) "
            "VALUES (?, 'u1', 'summary', '1.0', '{}', '{}', 'llama3', 'success', "
            "'2024-01-01 00:00:00')",
            f"00000000-0000-0000-0000-00000000000{number}",
        )
    _sqlite(path, "DELETE FROM audit_log WHERE id = 3")
    _sqlite(path, "CREATE TABLE audit_seen (n INTEGER)")
    _sqlite(
        path,
        "CREATE TRIGGER audit_counted AFTER INSERT ON audit_log "
        "BEGIN INSERT INTO audit_seen VALUES (NEW.id); END",
    )
    _sqlite(path, "CREATE VIEW audit_models AS SELECT model_used FROM audit_log")
    return store


def _schema(path: Path, kind: str) -> dict[str, str]:
    return dict(_sqlite(path, "SELECT name, sql FROM sqlite_master WHERE type = ?", kind))


def test_upgrading_lets_an_entry_name_no_model_and_keeps_rows_triggers_views_and_ids(tmp_path):
    path = tmp_path / "old.db"
    store = _old_store(path)
    rows = _sqlite(path, "SELECT * FROM audit_log ORDER BY id")
    triggers, views = _schema(path, "trigger"), _schema(path, "view")
    indexes = _schema(path, "index")
    assert _not_null(path)

    assert store.upgrade(NAME) == [NAME]

    assert not _not_null(path)
    assert _sqlite(path, "SELECT * FROM audit_log ORDER BY id") == rows
    assert _schema(path, "trigger") == triggers and _schema(path, "view") == views
    assert _schema(path, "index") == indexes
    assert "AUTOINCREMENT" in _schema(path, "table")["audit_log"].upper()
    store.upgrade()
    with store.session() as s:
        entry = log_generation(s, "u1", "summary", {"q": 1}, {"a": 2})
    assert entry.id == 4  # id 3 (deleted before the upgrade) is never handed out again
    assert _sqlite(path, "SELECT model_used FROM audit_log WHERE id = 4") == [(None,)]
    assert _sqlite(path, "SELECT n FROM audit_seen") == [(4,)]  # the trigger still fires


def test_downgrading_names_the_unknown_model_and_restores_not_null(tmp_path):
    path = tmp_path / "old.db"
    store = _old_store(path)
    store.upgrade(NAME)
    store._migrated = True  # stay at 0007
    with store.session() as s:
        log_generation(s, "u1", "summary", {"q": 1}, {"a": 2})
    _sqlite(path, "DELETE FROM audit_log WHERE id = 4")
    triggers, views = _schema(path, "trigger"), _schema(path, "view")

    assert store.downgrade(BEFORE) == [NAME]

    assert _not_null(path)
    assert _sqlite(path, "SELECT id, model_used FROM audit_log ORDER BY id") == [
        (1, "llama3"),
        (2, "llama3"),
    ]
    assert _schema(path, "trigger") == triggers and _schema(path, "view") == views
    assert _sqlite(path, "SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'") == [(4,)]


def test_an_empty_audit_log_keeps_its_largest_id_through_the_rebuild(tmp_path):
    path = tmp_path / "old.db"
    store = _old_store(path)
    _sqlite(path, "DELETE FROM audit_log")
    store.upgrade(NAME)
    with store.session() as s:
        assert log_generation(s, "u1", "summary", {"q": 1}, {"a": 2}).id == 4


def test_postgresql_alters_the_column_in_place(pg_url):
    url = pg_url

    def nullable(store: Store) -> str:
        with store.db.connection_context():
            return store.db.execute_sql(
                "SELECT is_nullable FROM information_schema.columns "
                "WHERE table_name = 'audit_log' AND column_name = 'model_used'"
            ).fetchone()[0]

    drop_db(url=url)
    store = open_store(url=url)
    store.upgrade(BEFORE)
    assert nullable(store) == "NO"
    assert store.upgrade(NAME) == [NAME]
    assert nullable(store) == "YES"
    store._migrated = True  # stay at 0007
    with store.session() as s:
        assert log_generation(s, "u1", "summary", {"q": 1}, {"a": 2}).model_used is None
    assert store.downgrade(BEFORE) == [NAME]
    assert nullable(store) == "NO"
    store.upgrade(NAME)
