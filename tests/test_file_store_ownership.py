"""A store owns exactly its own files: its folder, its marker, its deletions, its reads.

Each test here was first written against the layout where every store used
``files/`` beside its database, and failed there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from localchat import FileStoreError, NotFound, ValidationError, close_all, local_session
from localchat.cli import main
from localchat.config import resolve
from localchat.database import Store
from localchat.errors import OutsideStore
from localchat.files import MARKER_PREFIX
from localchat.models import Document
from localchat.repository import documents as document_ops
from localchat.schema import MIGRATIONS_DIR

pytestmark = pytest.mark.src("report.txt", b"v1")  # the `src` fixture's file

HEX = "0123456789abcdef0123456789abcdef"
OLD_HEAD = "0004_message_bumps_conversation"


def identity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        [(value,)] = conn.execute('SELECT "uuid" FROM "store_identity"').fetchall()
    finally:
        conn.close()
    return str(value)


def markers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(MARKER_PREFIX))


def read(db: Path, doc_id: int) -> bytes:
    with local_session(db) as s, document_ops.open_document(s, doc_id) as fh:
        return fh.read()


# -- 1. the folder belongs to one store ---------------------------------------------
def test_the_file_folder_is_named_after_the_database_and_marked_with_its_identity(tmp_path, src):
    db = tmp_path / "chat.db"
    with local_session(db) as s:
        doc = document_ops.create_document_with_file(s, src)
        assert s.store.files_dir == tmp_path / "chat.db-files"
    folder = tmp_path / "chat.db-files"
    assert (folder / doc.stored_name).read_bytes() == b"v1"
    uuid_hex = identity(db)
    assert len(uuid_hex) == 32 and int(uuid_hex, 16) >= 0
    assert markers(folder) == [f"{MARKER_PREFIX}{uuid_hex}"]
    assert not (tmp_path / "files").exists()


def _two_stores_and_a_users_file(tmp_path: Path, src: Path) -> dict[str, object]:
    """a.db and b.db side by side, each with a document, and the user's own files/."""
    user_files = tmp_path / "files"
    user_files.mkdir()
    taxes = user_files / "my-taxes-2024.pdf"
    taxes.write_bytes(b"%PDF- taxes")
    hex_named = user_files / f"{HEX}.pdf"  # looks like a stored name, is not a's
    hex_named.write_bytes(b"%PDF- also the user's")
    with local_session(tmp_path / "a.db") as s:
        a_doc = document_ops.create_document_with_file(s, src, "a.txt")
    other = tmp_path / "inbox" / "other.txt"
    other.write_bytes(b"b's bytes")
    with local_session(tmp_path / "b.db") as s:
        b_doc = document_ops.create_document_with_file(s, other, "b.txt")
    return {"taxes": taxes, "hex": hex_named, "a": a_doc, "b": b_doc}


def _everything_survived(tmp_path: Path, found: dict[str, object]) -> None:
    assert found["taxes"].read_bytes() == b"%PDF- taxes"  # type: ignore[attr-defined]
    assert found["hex"].read_bytes() == b"%PDF- also the user's"  # type: ignore[attr-defined]
    assert read(tmp_path / "a.db", found["a"].id) == b"v1"  # type: ignore[attr-defined]
    assert read(tmp_path / "b.db", found["b"].id) == b"b's bytes"  # type: ignore[attr-defined]
    with local_session(tmp_path / "b.db") as s:
        assert document_ops.verify_file_store(s).ok


def test_repair_of_one_store_keeps_the_users_files_and_the_neighbour_stores_documents(
    tmp_path, src
):
    found = _two_stores_and_a_users_file(tmp_path, src)
    with local_session(tmp_path / "a.db") as s:
        report = document_ops.repair_file_store(s, dry_run=False)
        assert report.removed == [] and report.ok
    _everything_survived(tmp_path, found)


def test_cli_repair_apply_keeps_the_users_files_and_the_neighbour_stores_documents(
    tmp_path, src, capsys
):
    found = _two_stores_and_a_users_file(tmp_path, src)
    close_all()
    assert main(["--db", str(tmp_path / "a.db"), "files", "repair", "--apply"]) == 0
    assert "removed" not in capsys.readouterr().out
    _everything_survived(tmp_path, found)


def test_a_users_file_in_the_stores_own_folder_is_reported_and_never_deleted(tmp_path, src):
    db = tmp_path / "chat.db"
    with local_session(db) as s:
        document_ops.create_document_with_file(s, src)
    folder = tmp_path / "chat.db-files"
    mine = folder / "notes.txt"
    mine.write_bytes(b"the user's")
    orphan = folder / f"{HEX}.txt"
    orphan.write_bytes(b"left by a crash")
    with local_session(db) as s:
        report = document_ops.repair_file_store(s, dry_run=False)
        assert {(i.kind, i.name) for i in report.issues} == {
            ("foreign", "notes.txt"),
            ("orphan", orphan.name),
        }
        assert report.removed == [orphan.name]
    assert mine.read_bytes() == b"the user's" and not orphan.exists()


def test_an_unmarked_folder_is_never_cleaned(tmp_path, capsys):
    db = tmp_path / "chat.db"
    folder = tmp_path / "chat.db-files"
    folder.mkdir()
    orphan = folder / f"{HEX}.txt"
    orphan.write_bytes(b"not provably ours")
    with local_session(db) as s:
        report = document_ops.repair_file_store(s, dry_run=False)
        assert [i.kind for i in report.issues] == ["orphan"]
        assert report.removed == [] and "not marked" in report.note
    assert main(["--db", str(db), "files", "repair", "--apply"]) == 1
    assert "the folder is not marked as this store's" in capsys.readouterr().out
    assert orphan.exists()


def test_a_folder_marked_by_another_store_is_not_written_or_cleaned(tmp_path, src):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    with local_session(b) as s:  # b keeps its documents in a's folder
        b_doc = document_ops.create_document_with_file(s, src, storage_dir=tmp_path / "a.db-files")
    with local_session(a) as s:
        report = document_ops.repair_file_store(s, dry_run=False)
        assert report.removed == [] and "another store" in report.note
        with pytest.raises(FileStoreError, match="another localchat store"):
            document_ops.create_document_with_file(s, src)
        assert Document.select().count() == 0
    assert read(b, b_doc.id) == b"v1"


def test_a_file_in_a_custom_folder_is_deleted_only_while_the_folder_is_marked(tmp_path, src):
    db = tmp_path / "chat.db"
    custom = tmp_path / "uploads"
    with local_session(db) as s:
        kept = document_ops.create_document_with_file(s, src, storage_dir=custom)
        other = tmp_path / "inbox" / "two.txt"
        other.write_bytes(b"two")
        gone = document_ops.create_document_with_file(s, other, storage_dir=custom)
    assert markers(custom) == [f"{MARKER_PREFIX}{identity(db)}"]
    with local_session(db) as s:
        document_ops.delete_document(s, gone.id, delete_file=True)
    assert not Path(gone.path).exists()
    for marker in markers(custom):
        (custom / marker).unlink()
    with local_session(db) as s:
        document_ops.delete_document(s, kept.id, delete_file=True)
    assert Path(kept.path).read_bytes() == b"v1"


def _old_store(tmp_path: Path, db: Path) -> list[tuple[int, bytes]]:
    """A store made with the 0004 layout: documents whose bytes are in ``files/``."""
    old_migrations = tmp_path / "old-migrations"
    old_migrations.mkdir()
    for path in MIGRATIONS_DIR.glob("000[1-4]_*.py"):
        shutil.copy(path, old_migrations / path.name)
    old = Store(resolve(db), migrations_dir=old_migrations)
    old.upgrade()
    legacy = db.parent / "files"
    legacy.mkdir(mode=0o700)
    uploads = db.parent / "uploads"  # an old storage_dir: no marker either
    uploads.mkdir(mode=0o700)
    made = []
    with old.session():
        for i, content in enumerate([b"old one", b"old two", b"old upload"]):
            name = f"{i:032x}.txt"
            folder = uploads if i == 2 else legacy
            (folder / name).write_bytes(content)
            doc = Document.create(
                filename=f"{i}.txt",
                stored_name=name,
                recorded_path=str(folder / name) if i == 2 else None,
                sha256=hashlib.sha256(content).hexdigest(),
                size=len(content),
            )
            made.append((doc.id, content))
    old.close()
    return made


def test_an_old_store_with_files_in_files_still_opens_verifies_and_serves_them(tmp_path, src):
    db = tmp_path / "chat.db"
    made = _old_store(tmp_path, db)
    legacy = tmp_path / "files"
    stray = legacy / f"{HEX}.txt"
    stray.write_bytes(b"no row names me, but files/ is not marked")
    with local_session(db) as s:  # upgrades to the newest migration
        for doc_id, content in made:
            with document_ops.open_document(s, doc_id) as fh:
                assert fh.read() == content
        for doc_id, _ in made[:2]:
            doc = document_ops.get_document(s, doc_id)
            assert doc.path == str(legacy / doc.stored_name)
        report = document_ops.verify_file_store(s)
        assert report.ok and report.files == 3, report.issues
        assert document_ops.repair_file_store(s, dry_run=False).removed == []
        new = document_ops.create_document_with_file(s, src)
    assert (tmp_path / "chat.db-files" / new.stored_name).read_bytes() == b"v1"
    assert stray.exists()
    with local_session(db) as s:
        document_ops.delete_document(s, made[0][0], delete_file=True)
    assert (legacy / f"{0:032x}.txt").exists()  # files/ is never the store's to delete in
    assert read(db, made[1][0]) == b"old two"


def test_the_identity_migration_goes_down_and_up_and_the_folder_stays_usable(tmp_path, src):
    db = tmp_path / "chat.db"
    store = Store(resolve(db))
    store.upgrade()
    first = identity(db)
    with store.session() as s:
        doc = document_ops.create_document_with_file(s, src)
    assert store.downgrade("0004_message_bumps_conversation")[-1] == "0005_store_identity"
    conn = sqlite3.connect(db)
    assert "store_identity" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert markers(tmp_path / "chat.db-files") == []
    store.upgrade()
    assert identity(db) != first
    with store.session() as s:
        other = tmp_path / "inbox" / "b.txt"
        other.write_bytes(b"b")
        document_ops.create_document_with_file(s, other)
        document_ops.delete_document(s, doc.id, delete_file=True)
    assert markers(tmp_path / "chat.db-files") == [f"{MARKER_PREFIX}{identity(db)}"]
    assert not (tmp_path / "chat.db-files" / doc.stored_name).exists()
    store.close()


def test_postgresql_stores_have_an_identity_and_mark_their_storage_dir(pg_session, tmp_path, src):
    [(uuid_hex,)] = pg_session.db.execute_sql('SELECT "uuid" FROM "store_identity"').fetchall()
    assert len(uuid_hex) == 32
    assert pg_session.store.files_dir is None
    with pytest.raises(FileStoreError, match="storage_dir"):
        document_ops.create_document_with_file(pg_session, src)
    doc = document_ops.create_document_with_file(pg_session, src, storage_dir=tmp_path / "up")
    assert markers(tmp_path / "up") == [f"{MARKER_PREFIX}{uuid_hex}"]
    assert doc.path == str((tmp_path / "up").resolve() / doc.stored_name)


# -- 2. move=True deletes only what was stored -------------------------------------------
def test_move_keeps_a_source_that_changed_after_the_copy(tmp_path, src):
    db = tmp_path / "chat.db"
    with local_session(db) as s:
        doc = document_ops.create_document_with_file(s, src, move=True)
        src.write_text("v2")
    assert src.read_text() == "v2"
    assert read(db, doc.id) == b"v1"


def test_move_keeps_a_source_replaced_by_another_file_with_the_same_bytes(tmp_path, src):
    with local_session(tmp_path / "chat.db") as s:
        document_ops.create_document_with_file(s, src, move=True)
        replacement = src.with_name("replacement")
        replacement.write_bytes(b"v1")
        os.replace(replacement, src)  # another file now, though its bytes are equal
    assert src.read_bytes() == b"v1"


def test_store_local_file_move_keeps_a_source_changed_while_it_was_copied(
    tmp_path, src, monkeypatch
):
    from localchat import files as files_module

    real_install = files_module.Spool.install

    def install_then_change(self, name):
        src.write_bytes(b"changed meanwhile")
        return real_install(self, name)

    monkeypatch.setattr(files_module.Spool, "install", install_then_change)
    name, path = files_module.store_local_file(src, tmp_path / "docs", move=True)
    assert src.read_bytes() == b"changed meanwhile" and path.read_bytes() == b"v1"


# -- 3. deleting and reading stay inside the store ----------------------------------------
def test_delete_file_never_deletes_a_file_outside_the_stores_folders(tmp_path, src):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / f"{HEX}.txt"
    victim.write_bytes(b"keep me")
    with local_session(tmp_path / "chat.db") as s:
        doc = document_ops.create_document_with_file(s, src)
        Document.update(stored_name=victim.name, path=str(victim)).where(
            Document.id == doc.id
        ).execute()
        assert document_ops.delete_document(s, doc.id, delete_file=True)
    assert victim.read_bytes() == b"keep me"


@pytest.mark.parametrize("relative", [False, True])
def test_open_document_refuses_a_path_outside_the_store_unless_allowed(
    tmp_path, monkeypatch, relative
):
    secret = tmp_path / "secret" / "shadow"
    secret.parent.mkdir()
    secret.write_bytes(b"root:*:")
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    given = "../../secret/shadow" if relative else str(secret)
    with local_session(tmp_path / "chat.db") as s:
        doc = document_ops.create_document(s, "shadow", given)
        with pytest.raises(OutsideStore, match="shadow"):
            document_ops.open_document(s, doc.id)
        with document_ops.open_document(s, doc.id, allow_outside=True) as fh:
            assert fh.read() == b"root:*:"


def test_open_document_reads_a_metadata_path_inside_the_stores_folder(tmp_path, src):
    db = tmp_path / "chat.db"
    with local_session(db) as s:
        stored = document_ops.create_document_with_file(s, src)
        meta = document_ops.create_document(s, "same.txt", stored.path)
        with document_ops.open_document(s, meta.id) as fh:
            assert fh.read() == b"v1"


# -- 4. doc.path tells where the bytes are -----------------------------------------------
def test_path_is_where_the_bytes_are_for_every_kind_of_document(tmp_path, src):
    db = tmp_path / "chat.db"
    with local_session(db) as s:
        own = document_ops.create_document_with_file(s, src)
        custom = document_ops.create_document_with_file(s, src, storage_dir=tmp_path / "up")
        meta = document_ops.create_document(s, "m.txt", "/nowhere/m.txt")
        listed = {d.id: d.path for d in document_ops.list_documents(s)}
        fetched = document_ops.get_document(s, own.id)
        assert [d.id for d in Document.select().where(Document.path.is_null())] == [own.id]
    expected = str(tmp_path / "chat.db-files" / own.stored_name)
    assert own.path == fetched.path == listed[own.id] == expected
    with open(own.path, "rb") as fh:  # code written from the seed documents works
        assert fh.read() == b"v1"
    assert own.recorded_path is None  # the column: NULL for the store's own folder
    assert custom.path == custom.recorded_path == listed[custom.id]
    assert meta.path == meta.recorded_path == "/nowhere/m.txt"
    as_dict = own.to_dict()
    assert as_dict["path"] == expected and as_dict["recorded_path"] is None


# -- 5. hostile arguments become localchat errors -----------------------------------------
def _nothing_stored(db: Path) -> None:
    with local_session(db):
        assert Document.select().count() == 0
    folder = db.parent / "chat.db-files"
    assert not folder.exists() or markers(folder) == sorted(os.listdir(folder))


@pytest.mark.parametrize("bad", [None, 0, 1.5, object(), ["a.txt"]])
@pytest.mark.parametrize("move", [False, True])
def test_a_source_that_is_not_a_path_is_a_validation_error(tmp_path, bad, move):
    db = tmp_path / "chat.db"
    with local_session(db) as s:
        with pytest.raises(ValidationError, match="source"):
            document_ops.create_document_with_file(s, bad, move=move)
    _nothing_stored(db)


@pytest.mark.parametrize("bad", [5, 1.5, object(), True])
def test_a_storage_dir_that_is_not_a_path_is_a_validation_error(tmp_path, src, bad):
    db = tmp_path / "chat.db"
    with local_session(db) as s:
        with pytest.raises(ValidationError, match="storage_dir"):
            document_ops.create_document_with_file(s, src, storage_dir=bad)
    _nothing_stored(db)


@pytest.mark.parametrize("name", ["\udcff.txt", "\ud800x.txt", "a\udfffb.txt"])
@pytest.mark.parametrize("move", [False, True])
def test_a_missing_source_with_a_lone_surrogate_is_a_localchat_error(tmp_path, name, move):
    db = tmp_path / "chat.db"
    with local_session(db) as s:
        with pytest.raises((NotFound, ValidationError)):
            document_ops.create_document_with_file(s, str(tmp_path / name), move=move)
    _nothing_stored(db)


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS refuses non-UTF-8 file names")
@pytest.mark.parametrize("move", [False, True])
def test_an_existing_source_with_an_undecodable_name_is_stored(tmp_path, move):
    raw = os.path.join(os.fsencode(tmp_path), b"\xff.txt")
    with open(raw, "wb") as fh:
        fh.write(b"bytes")
    db = tmp_path / "chat.db"
    with local_session(db) as s:
        doc = document_ops.create_document_with_file(s, os.fsdecode(raw), move=move)
    assert doc.filename == "\ufffd.txt" and read(db, doc.id) == b"bytes"
    assert os.path.exists(raw) is not move


def test_open_document_reads_only_store_named_files_in_folders_the_user_shares(tmp_path, src):
    db = tmp_path / "chat.db"
    legacy = tmp_path / "files"
    legacy.mkdir()
    taxes = legacy / "my-taxes-2024.pdf"
    taxes.write_bytes(b"%PDF- taxes")
    uploads = tmp_path / "uploads"
    with local_session(db) as s:
        stored = document_ops.create_document_with_file(s, src, storage_dir=uploads)
        diary = uploads / "diary.txt"
        diary.write_bytes(b"private")
        for path in (taxes, diary):
            doc = document_ops.create_document(s, path.name, str(path))
            with pytest.raises(OutsideStore):
                document_ops.open_document(s, doc.id)
        same = document_ops.create_document(s, "same.txt", stored.path)
        with document_ops.open_document(s, same.id) as fh:
            assert fh.read() == b"v1"
