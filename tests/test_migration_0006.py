"""Migration 0006 and identity: an integer id is never handed out twice.

SQLite gives a plain ``INTEGER PRIMARY KEY`` table's next row ``max(id) + 1``,
so deleting the newest row frees its id for the next one (an app remembering
"conversation 2" would open another chat). 0006 rebuilds every table with an
integer ``id`` as ``AUTOINCREMENT``, keeping every row, index, trigger, view
and full-text index; on PostgreSQL (sequences never go back) it does nothing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import sqlite3
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest

from localchat import MigrationError, close_all, drop_db, open_store
from localchat.config import resolve
from localchat.database import Store
from localchat.factories import Factories
from localchat.models import ALL_MODELS, Conversation, Message, User
from localchat.repository import (
    add_message,
    create_conversation,
    create_user,
    create_web_session,
    delete_conversation,
    delete_message,
    delete_user,
    import_messages,
    log_generation,
    record_response,
)
from localchat.schema import MIGRATIONS_DIR
from localchat.search import search_conversations, search_knowledge, search_messages

NAME = "0006_ids_never_reused"


def _names() -> list[str]:
    from playhouse.migrations import Migration

    return [m.name for m in Migration.load_directory(str(MIGRATIONS_DIR))]


def _before() -> str:
    """The migration just before 0006 (the head an old store was left at)."""
    names = _names()
    return names[names.index(NAME) - 1]


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _schema(path: Path, kind: str) -> dict[str, str]:
    conn = _connect(path)
    try:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = ? AND sql IS NOT NULL", (kind,)
        ).fetchall()
    finally:
        conn.close()
    return dict(rows)


def _plain_tables(path: Path) -> list[str]:
    """Every ordinary table (no FTS shadow tables, no SQLite internals)."""
    conn = _connect(path)
    try:
        virtual = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL%'")
        ]
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                " AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name"
            )
        ]
    finally:
        conn.close()
    return [n for n in names if not any(n.startswith(v + "_") for v in virtual)]


def _rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = _connect(path)
    try:
        return {
            t: conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall()
            for t in _plain_tables(path)
            if t != "schema_migration"  # the runner's history grows, of course
        }
    finally:
        conn.close()


def _id_column(sql: str) -> str:
    """The ``"id" ...`` column definition of a CREATE TABLE statement."""
    found = re.search(r'"id"\s+INTEGER[^,)]*', sql, re.IGNORECASE)
    assert found, sql
    return " ".join(found.group(0).upper().split())


def _fts_ok(path: Path) -> list[str]:
    """Run FTS5's integrity-check on every index (raises if one disagrees with its table)."""
    conn = _connect(path)
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE%fts5%'"
            )
        ]
        for name in names:
            conn.execute(f"INSERT INTO {name}({name}, rank) VALUES ('integrity-check', 1)")
    finally:
        conn.close()
    return names


# -- behaviour on a current store -------------------------------------------


def test_a_deleted_newest_conversation_id_is_never_handed_out_again(localchat_session):
    s = localchat_session
    create_conversation(s, title="one")
    second = create_conversation(s, title="two")
    assert delete_conversation(s, second.id)
    third = create_conversation(s, title="three")
    assert third.id > second.id


def test_deleted_newest_user_and_message_ids_are_not_reused(localchat_session):
    s = localchat_session
    user = create_user(s, "gone@example.org")
    assert delete_user(s, user.id)
    assert create_user(s, "next@example.org").id > user.id
    conv = create_conversation(s)
    first = add_message(s, conv.id, "user", "hi")
    assert delete_message(s, first.id)
    assert add_message(s, conv.id, "user", "again").id > first.id


def test_ids_are_not_reused_after_the_store_is_closed_and_reopened(tmp_path):
    path = tmp_path / "s.db"
    with open_store(path).session() as s:
        conv = create_conversation(s)
        delete_conversation(s, conv.id)
    close_all()
    with open_store(path).session() as s:
        assert create_conversation(s).id > conv.id


def test_a_bulk_import_does_not_reuse_the_id_of_a_deleted_newest_message(localchat_session):
    s = localchat_session
    conv = create_conversation(s)
    newest = add_message(s, conv.id, "user", "soon gone")
    delete_message(s, newest.id)
    import_messages(s, [{"conversation_id": conv.id, "role": "user", "content": "imported"}])
    imported = Message.get(Message.content == "imported")
    assert imported.id > newest.id
    assert add_message(s, conv.id, "user", "after").id > imported.id


def _integer_id_tables(path: Path) -> list[str]:
    conn = _connect(path)
    try:
        return [
            t
            for t in _plain_tables(path)
            if [(c[1], c[2].upper()) for c in conn.execute(f'PRAGMA table_info("{t}")') if c[5]]
            == [("id", "INTEGER")]
        ]
    finally:
        conn.close()


def test_every_table_with_an_integer_id_is_autoincrement_in_a_fresh_store(localchat_db_path):
    tables = _schema(localchat_db_path, "table")
    with_ids = [t for t in _integer_id_tables(localchat_db_path) if t != "schema_migration"]
    assert {m._meta.table_name for m in ALL_MODELS} <= set(with_ids)
    for table in with_ids:
        assert "AUTOINCREMENT" in _id_column(tables[table]), table
    assert "AUTOINCREMENT" not in tables["schema_migration"].upper()  # the runner's own


def test_the_models_declare_the_id_the_migrations_make(localchat_session):
    tables = _schema(Path(localchat_session.db.database), "table")
    for model in ALL_MODELS:
        sql, _ = model._schema._create_table(safe=False).query()
        assert _id_column(sql) == _id_column(tables[model._meta.table_name]), model


def test_the_model_id_has_no_autoincrement_in_postgresql_ddl():
    ctx = peewee.PostgresqlDatabase("unused").get_sql_context()  # never connects
    sql, _ = ctx.sql(Conversation.id.ddl(ctx)).query()
    assert sql == '"id" SERIAL NOT NULL PRIMARY KEY'


# -- the migration on a store holding data ----------------------------------


@contextlib.contextmanager
def _models_of(store: Store) -> Iterator[None]:
    """Hide the model fields the store's older schema lacks (later migrations add them)."""
    hidden = []
    with store.db.connection_context():
        for model in ALL_MODELS:
            columns = {c.name for c in store.db.get_columns(model._meta.table_name)}
            for f in list(model._meta.sorted_fields) if columns else []:
                if f.column_name not in columns:
                    hidden.append((model, f))
                    model._meta.remove_field(f.name)
    try:
        yield
    finally:
        for model, f in hidden:
            model._meta.add_field(f.name, f)


def _old_store(path: Path) -> Store:
    """A store at the migration before 0006, holding rows of every table."""
    store = Store(resolve(path))
    store.upgrade(_before())
    store._migrated = True  # the repository works on this schema too
    with _models_of(store), store.session() as s:
        make = Factories(s)
        ada = make.user(username="ada")
        create_web_session(s, "token-1", ada.id)
        conv = make.conversation(user=ada, title="Zürich trip plans")
        question = add_message(s, conv.id, "user", "where do penguins live")
        answer = add_message(s, conv.id, "assistant", "antarctic penguins live on ice")
        add_message(s, conv.id, "assistant", "a sibling reply", parent_id=question.id)
        record_response(s, answer.id, "llama3", 10, 20, 30, 400, options={"temperature": 0.2})
        make.document(user=ada, conversation=conv)
        make.prompt()
        make.model()
        make.knowledge_chunk(title="Penguins", content="emperor penguins breed in winter")
        log_generation(s, str(ada.id), "plan", {"a": 1}, {"b": 2}, "llama3")  # NOT NULL here
        gone = make.conversation(user=ada, title="deleted newest")
        add_message(s, gone.id, "user", "deleted with it")
        delete_conversation(s, gone.id)
    store.close()
    return store


def test_upgrading_keeps_every_row_index_trigger_and_search_index(tmp_path):
    path = tmp_path / "old.db"
    _old_store(path)
    rows, indexes, triggers = _rows(path), _schema(path, "index"), _schema(path, "trigger")
    assert {"message_fts_ai", "message_bumps_conversation"} <= set(triggers)
    store = Store(resolve(path))
    assert store.upgrade(NAME)[-1] == NAME
    close_all()
    assert _rows(path) == rows
    assert _schema(path, "index") == indexes
    assert _schema(path, "trigger") == triggers
    assert _fts_ok(path) == ["message_fts", "conversation_fts", "knowledge_chunk_fts"]
    assert _connect(path).execute("PRAGMA foreign_key_check").fetchall() == []
    with Store(resolve(path)).session() as s:
        assert {h.message.content for h in search_messages(s, "penguins")} == {
            "antarctic penguins live on ice",
            "where do penguins live",
        }
        assert len(search_conversations(s, "zurich")) == 1
        assert len(search_knowledge(s, "emperor")) == 1
        conv = Conversation.get(Conversation.title == "Zürich trip plans")
        new = add_message(s, conv.id, "user", "and puffins?")  # 0004's trigger still runs
        assert Conversation.get_by_id(conv.id).last_message == "and puffins?"
        assert [h.message.id for h in search_messages(s, "puffins")] == [new.id]
        # the id of the conversation deleted before the upgrade is below every new one
        assert create_conversation(s).id > max(r[0] for r in rows["conversation"])
    assert _fts_ok(path)


def test_downgrading_0006_restores_plain_integer_primary_keys_and_keeps_rows(tmp_path):
    path = tmp_path / "s.db"
    store = _old_store(path)
    store.upgrade()
    while _applied(store)[-1] != NAME:  # later migrations go first
        store.downgrade()
    close_all()
    rows, triggers = _rows(path), _schema(path, "trigger")
    assert store.downgrade() == [NAME]
    close_all()
    tables = _schema(path, "table")
    for table in _plain_tables(path):
        assert "AUTOINCREMENT" not in tables[table].upper(), table
    assert _rows(path) == rows
    assert _schema(path, "trigger") == triggers
    assert _fts_ok(path)
    conn = _connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM sqlite_sequence").fetchone() == (0,)
    finally:
        conn.close()
    assert store.upgrade()[0] == NAME
    assert "AUTOINCREMENT" in _schema(path, "table")["message"].upper()


def _applied(store: Store) -> list[str]:
    return [m.name for m in store.migration_status() if m.applied]


EXTRA_TABLES = """
    def up(migrator, db):
        db.execute_sql('CREATE TABLE "gadget" ("id" INTEGER NOT NULL PRIMARY KEY, '
                       '"message_id" INTEGER REFERENCES "message" ("id") ON DELETE CASCADE, '
                       '"label" TEXT UNIQUE)')
        db.execute_sql('CREATE INDEX "gadget_message_id" ON "gadget" ("message_id")')
        db.execute_sql('CREATE TABLE "setting" ("key" TEXT PRIMARY KEY, "value" TEXT)')
        db.execute_sql('CREATE VIEW "message_count" AS '
                       'SELECT conversation_id, count(*) AS n FROM message GROUP BY 1')
        db.execute_sql('CREATE TRIGGER "gadget_label" AFTER INSERT ON "gadget" BEGIN '
                       'UPDATE "gadget" SET "label" = "label" || \\'!\\' WHERE id = NEW.id; END')
        db.execute_sql('INSERT INTO "gadget" ("message_id", "label") '
                       'SELECT "id", "g" || "id" FROM "message"')
        db.execute_sql('INSERT INTO "setting" VALUES (\\'theme\\', \\'dark\\')')

    def down(migrator, db):
        db.execute_sql('DROP VIEW "message_count"')
        db.execute_sql('DROP TABLE "gadget"')
        db.execute_sql('DROP TABLE "setting"')
"""


def _migrations_copy(tmp_path: Path, extra: dict[str, str]) -> Path:
    """The shipped migrations plus test-only ones, in a folder of the test's own."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    for source in MIGRATIONS_DIR.glob("[0-9]*.py"):
        (folder / source.name).write_bytes(source.read_bytes())
    for name, body in extra.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(body))
    return folder


def test_tables_views_and_triggers_0006_was_not_written_for_are_kept(tmp_path):
    folder = _migrations_copy(tmp_path, {"0005_zz_extra_tables": EXTRA_TABLES})
    path = tmp_path / "s.db"
    store = open_store(path, migrations_dir=folder)
    store.upgrade(_before())
    store._migrated = True  # the repository works on this schema too
    with _models_of(store), store.session() as s:
        conv = create_conversation(s)
        add_message(s, conv.id, "user", "one")
    store.upgrade("0005_zz_extra_tables")
    close_all()
    rows, views = _rows(path), _schema(path, "view")
    triggers = _schema(path, "trigger")
    assert store.upgrade(NAME)[-1] == NAME
    close_all()
    tables = _schema(path, "table")
    assert _id_column(tables["gadget"]).endswith("AUTOINCREMENT")
    assert "AUTOINCREMENT" not in tables["setting"].upper()  # no integer id: left alone
    assert _rows(path) == rows
    assert _schema(path, "view") == views and _schema(path, "trigger") == triggers
    assert "gadget_message_id" in _schema(path, "index")
    conn = _connect(path)
    try:
        assert conn.execute("SELECT n FROM message_count").fetchall() == [(1,)]
    finally:
        conn.close()


def _migration_module() -> Any:
    spec = importlib.util.spec_from_file_location("m0006", MIGRATIONS_DIR / f"{NAME}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_0006_refuses_to_rebuild_with_foreign_keys_on_and_deletes_nothing(tmp_path):
    path = tmp_path / "s.db"
    _old_store(path)
    rows = _rows(path)
    db = peewee.SqliteDatabase(str(path), pragmas={"foreign_keys": 1})
    from playhouse.migrate import SqliteMigrator

    with db.connection_context():
        with pytest.raises(RuntimeError, match="foreign keys"):
            with db.atomic():
                _migration_module().up(SqliteMigrator(db), db)
    assert _rows(path) == rows
    assert "AUTOINCREMENT" not in _schema(path, "table")["conversation"].upper()


FAILING_0006 = """

    _real_up = up

    def up(migrator, db):
        _real_up(migrator, db)  # every table rebuilt, then a failure
        raise RuntimeError("deliberate")
"""


def test_a_failure_inside_0006_leaves_the_old_schema_and_rows(tmp_path):
    path = tmp_path / "s.db"
    _old_store(path)
    rows, tables = _rows(path), _schema(path, "table")
    folder = _migrations_copy(tmp_path, {})
    shipped = folder / f"{NAME}.py"
    shipped.write_text(shipped.read_text() + textwrap.dedent(FAILING_0006))
    store = open_store(path, migrations_dir=folder)
    with pytest.raises(MigrationError, match="deliberate"):
        store.upgrade()
    close_all()
    assert _rows(path) == rows and _schema(path, "table") == tables


# -- PostgreSQL ---------------------------------------------------------------


def _pg_schema(store: Store) -> list[tuple[Any, ...]]:
    with store.db.connection_context():
        columns = store.db.execute_sql(
            "SELECT table_name, column_name, data_type, column_default, is_nullable "
            "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"
        ).fetchall()
        indexes = store.db.execute_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
        sequences = store.db.execute_sql(
            "SELECT sequencename, last_value FROM pg_sequences "
            "WHERE schemaname = 'public' AND sequencename NOT LIKE %s ORDER BY 1",
            ("schema_migration%",),
        ).fetchall()
    return [*columns, *indexes, *sequences]


def test_0006_changes_nothing_on_postgresql_where_ids_are_never_reused(pg_url):
    url = pg_url  # held by this test alone: other workers' tests use the same database
    drop_db(url=url)
    store = open_store(url=url)
    store.upgrade(_before())
    store._migrated = True
    with _models_of(store), store.session() as s:
        create_conversation(s, title="one")
    before = _pg_schema(store)
    assert store.upgrade(NAME) == [NAME]
    assert _pg_schema(store) == before
    store.upgrade()
    with store.session() as s:
        second = create_conversation(s, title="two")
        delete_conversation(s, second.id)
        assert create_conversation(s, title="three").id > second.id
        user = User.create(email="pg@example.org")
        user.delete_instance()
        assert User.create(email="pg2@example.org").id > user.id


REBUILD_MESSAGE = """
    from peewee import *
    from localchat.search.index import keep_triggers

    def up(migrator, db):
        with keep_triggers(db, "message"):  # alter_column_type rebuilds the table
            migrator.migrate(migrator.alter_column_type("message", "model", TextField(null=True)))
"""


def test_a_later_rebuild_under_keep_triggers_keeps_the_largest_id_ever_used(tmp_path):
    folder = _migrations_copy(tmp_path, {"9001_rebuild_message": REBUILD_MESSAGE})
    path = tmp_path / "s.db"
    store = open_store(path, migrations_dir=folder)
    store.upgrade(NAME)
    store._migrated = True
    with _models_of(store), store.session() as s:
        conv = create_conversation(s)
        add_message(s, conv.id, "user", "kept")
        newest = add_message(s, conv.id, "user", "deleted")
        delete_message(s, newest.id)
    assert store.upgrade()[-1] == "9001_rebuild_message"
    with store.session() as s:
        assert add_message(s, conv.id, "user", "after the rebuild").id > newest.id
