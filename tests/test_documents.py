"""Documents: the seed example, create/read/update/attach/delete, copy vs move, dedup."""

from __future__ import annotations

import hashlib
import importlib
import re
import tempfile
import textwrap
from pathlib import Path

import pytest

from localchat import FileStoreError, NotFound, ValidationError, local_session
from localchat.files import MARKER_PREFIX
from localchat.models import Document
from localchat.repository import add_message, create_conversation, create_user
from localchat.repository import documents as document_ops

pytestmark = pytest.mark.src("Notes.TXT", b"Hello world")  # the `src` fixture's file

STORED = re.compile(r"[0-9a-f]{32}\.txt")


class Boom(Exception):
    pass


def files_in(folder: Path) -> list[str]:
    """The files in ``folder`` but the store's marker."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(MARKER_PREFIX))


def test_seed_document_example_runs_as_written(tmp_path, monkeypatch, db_path):
    monkeypatch.chdir(tmp_path)
    with local_session(db_path) as session:
        # Create directly
        doc = document_ops.create_document(
            session, filename="original.txt", path="/path/to/original.txt", tags=["tag1"]
        )
        assert (doc.filename, doc.path, doc.tags, doc.stored_name) == (
            "original.txt",
            "/path/to/original.txt",
            ["tag1"],
            None,
        )

        # Or create with file storage (recommended)
        tmp_file = Path("temp.txt")
        tmp_file.write_text("Hello world")

        doc = document_ops.create_document_with_file(
            session,
            src_path=tmp_file,
            original_filename="original.txt",
            storage_dir="documents",  # Will be created if missing
            tags=["tag1"],
        )

        fetched = document_ops.get_document(session, doc.id)
        document_ops.update_document(session, doc.id, tags=["updated"])
        stored = tmp_path / "documents" / doc.stored_name
        assert fetched.filename == "original.txt" and STORED.fullmatch(doc.stored_name)
        assert stored.read_text() == "Hello world"
        assert document_ops.get_document(session, doc.id).tags == ["updated"]
        document_ops.delete_document(session, doc.id, delete_file=True)
        assert stored.exists()  # removed only once the transaction commits
    assert not stored.exists()
    assert tmp_file.read_text() == "Hello world"  # the user's original is never lost


def test_create_document_is_metadata_only(db_path, tmp_path):
    with local_session(db_path) as s:
        doc = document_ops.create_document(s, "scan.pdf", tmp_path / "nowhere.pdf")
        assert (doc.size, doc.sha256, doc.mime_type) == (None, None, "application/pdf")
        assert doc.path == str(tmp_path / "nowhere.pdf")
    assert not (db_path.parent / "chat.db-files").exists()


def test_a_stored_file_records_uuid_name_hash_size_and_mime(db_path, src):
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, src, "Quarterly Notes.TXT")
    assert doc.filename == "Quarterly Notes.TXT"
    assert STORED.fullmatch(doc.stored_name) and doc.recorded_path is None
    assert doc.path == str(db_path.parent / "chat.db-files" / doc.stored_name)
    assert doc.sha256 == hashlib.sha256(b"Hello world").hexdigest()
    assert (doc.size, doc.mime_type) == (11, "text/plain")
    assert (db_path.parent / "chat.db-files" / doc.stored_name).read_bytes() == b"Hello world"


def test_the_original_name_defaults_to_the_source_name(db_path, src):
    with local_session(db_path) as s:
        assert document_ops.create_document_with_file(s, src).filename == "Notes.TXT"


def test_copy_is_the_default_and_the_source_stays(db_path, src):
    with local_session(db_path) as s:
        document_ops.create_document_with_file(s, src)
    assert src.read_bytes() == b"Hello world"


def test_move_removes_the_source_only_after_the_commit(db_path, src):
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, src, move=True)
        assert src.exists()
    assert not src.exists()
    assert (db_path.parent / "chat.db-files" / doc.stored_name).read_bytes() == b"Hello world"


def test_move_then_rollback_keeps_the_source_and_stores_nothing(db_path, src):
    with pytest.raises(Boom):
        with local_session(db_path) as s:
            document_ops.create_document_with_file(s, src, move=True)
            raise Boom
    assert src.read_bytes() == b"Hello world"
    assert files_in(db_path.parent / "chat.db-files") == []


def test_move_refuses_a_source_already_in_the_store(db_path, src):
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, src)
        inside = db_path.parent / "chat.db-files" / doc.stored_name
        with pytest.raises(ValidationError, match="already in the storage folder"):
            document_ops.create_document_with_file(s, inside, move=True)
    assert inside.exists()


# -- dedup and reference counting --------------------------------------------------
def test_identical_content_is_stored_once_and_freed_with_the_last_document(db_path, src):
    files = db_path.parent / "chat.db-files"
    with local_session(db_path) as s:
        a = document_ops.create_document_with_file(s, src, "a.txt")
        b = document_ops.create_document_with_file(s, src, "b.txt")
        assert a.stored_name == b.stored_name and a.id != b.id
    assert files_in(files) == [a.stored_name]
    with local_session(db_path) as s:
        assert document_ops.delete_document(s, a.id, delete_file=True)
    assert files_in(files) == [a.stored_name]  # b still uses it
    with local_session(db_path) as s:
        assert document_ops.delete_document(s, b.id, delete_file=True)
    assert files_in(files) == []


def test_dedup_is_per_folder(db_path, src, tmp_path):
    with local_session(db_path) as s:
        a = document_ops.create_document_with_file(s, src)
        b = document_ops.create_document_with_file(s, src, storage_dir=tmp_path / "elsewhere")
        c = document_ops.create_document_with_file(s, src, storage_dir=tmp_path / "elsewhere")
    assert a.stored_name != b.stored_name == c.stored_name
    assert b.path == str((tmp_path / "elsewhere" / b.stored_name).resolve())


def test_the_store_folder_given_explicitly_is_the_default_store(db_path, src):
    with local_session(db_path) as s:
        a = document_ops.create_document_with_file(s, src)
        b = document_ops.create_document_with_file(
            s, src, storage_dir=db_path.parent / "chat.db-files"
        )
    assert b.recorded_path is None and a.stored_name == b.stored_name


def test_delete_without_delete_file_keeps_the_file_as_an_orphan(db_path, src):
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, src)
    with local_session(db_path) as s:
        assert document_ops.delete_document(s, doc.id)
    assert files_in(db_path.parent / "chat.db-files") == [doc.stored_name]
    with local_session(db_path) as s:
        report = document_ops.verify_file_store(s)
    assert [(i.kind, i.name) for i in report.issues] == [("orphan", doc.stored_name)]


def test_delete_file_never_deletes_a_metadata_only_documents_path(db_path, src):
    with local_session(db_path) as s:
        doc = document_ops.create_document(s, "notes.txt", src)
        assert document_ops.delete_document(s, doc.id, delete_file=True)
    assert src.exists()


def test_delete_returns_false_when_missing(db_path):
    with local_session(db_path) as s:
        assert document_ops.delete_document(s, 12345, delete_file=True) is False


# -- read ------------------------------------------------------------------------
def test_get_document_by_id_or_uuid_and_none_when_missing(db_path, src):
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, src)
        assert document_ops.get_document(s, doc.id).id == doc.id
        assert document_ops.get_document(s, str(doc.uuid)).id == doc.id
        assert document_ops.get_document(s, 999) is None


def test_open_document_gives_the_bytes(db_path, src):
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, src)
        with document_ops.open_document(s, doc.uuid) as fh:
            assert fh.read() == b"Hello world"
        with pytest.raises(NotFound):
            document_ops.open_document(s, 999)
        empty = document_ops.create_document(s, "nothing.txt", None)
        with pytest.raises(FileStoreError, match="has no file"):
            document_ops.open_document(s, empty.id)


def test_open_document_reports_a_missing_file(db_path, src):
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, src)
        (db_path.parent / "chat.db-files" / doc.stored_name).unlink()
        with pytest.raises(FileStoreError, match="missing"):
            document_ops.open_document(s, doc.id)


def test_list_documents_filters_by_user_conversation_message_and_tag(db_path, src):
    with local_session(db_path) as s:
        ada = create_user(s, email="ada@example.org")
        bob = create_user(s, email="bob@example.org")
        conv = create_conversation(s, user_id=ada.id, title="t")
        msg = add_message(s, conv.id, "user", "see attached")
        d1 = document_ops.create_document_with_file(s, src, tags=["x", "y"], user_id=ada.id)
        d2 = document_ops.create_document(s, "b.txt", None, ["y"], conversation_id=conv.id)
        d3 = document_ops.create_document(s, "c.txt", None, ["xy"], message_id=msg.id)
        d4 = document_ops.create_document(s, "d.txt", None, user_id=bob.uuid)

        def ids(**kw):
            return [d.id for d in document_ops.list_documents(s, **kw)]

        assert ids() == [d4.id, d3.id, d2.id, d1.id]
        assert ids(user_id=ada.id) == [d1.id]
        assert ids(user_id=str(bob.uuid)) == [d4.id]
        assert ids(conversation_id=conv.id) == [d3.id, d2.id]  # a message implies its chat
        assert ids(message_id=msg.id) == [d3.id]
        assert ids(tag="y") == [d2.id, d1.id]
        assert ids(tag="x") == [d1.id]
        assert ids(user_id=ada.id, tag="y") == [d1.id]
        assert ids(limit=2, offset=1) == [d3.id, d2.id]
        assert ids(user_id=424242) == []
        with pytest.raises(ValidationError, match="limit"):
            ids(limit=0)


# -- change ----------------------------------------------------------------------
def test_update_document_changes_tags_and_filename(db_path, src):
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, src, "a", tags=["old"])
        assert doc.mime_type == "application/octet-stream"
        updated = document_ops.update_document(s, doc.id, tags=["new", "new"], filename="a.md")
        assert (updated.tags, updated.filename) == (["new"], "a.md")
        assert updated.mime_type == "text/markdown"
        assert updated.stored_name == doc.stored_name  # the file is not renamed
        assert document_ops.update_document(s, 999, tags=["x"]) is None


@pytest.mark.parametrize("tags", ["tag", [""], [1], ["a\0"], [["nested"]], {"a": 1}])
def test_bad_tags_are_refused(db_path, tags):
    with local_session(db_path) as s:
        with pytest.raises(ValidationError):
            document_ops.create_document(s, "a.txt", None, tags)


def test_attach_document_to_a_conversation_or_a_message(db_path, src):
    with local_session(db_path) as s:
        conv = create_conversation(s, title="t")
        other = create_conversation(s, title="u")
        msg = add_message(s, conv.id, "user", "hi")
        doc = document_ops.create_document_with_file(s, src)
        attached = document_ops.attach_document(s, doc.id, message_id=msg.id)
        assert (attached.conversation_id, attached.message_id) == (conv.id, msg.id)
        assert document_ops.attach_document(s, doc.id, conversation_id=other.id).message_id
        with pytest.raises(ValidationError, match="belongs to conversation"):
            document_ops.attach_document(s, doc.id, conversation_id=other.id, message_id=msg.id)
        with pytest.raises(NotFound):
            document_ops.attach_document(s, doc.id, conversation_id=999)
        with pytest.raises(ValidationError):
            document_ops.attach_document(s, doc.id)
        assert document_ops.attach_document(s, 999, conversation_id=conv.id) is None


def test_an_unknown_owner_is_not_found_and_nothing_is_stored(db_path, src):
    with local_session(db_path) as s:
        with pytest.raises(NotFound, match="no user"):
            document_ops.create_document_with_file(s, src, user_id=999)
        assert Document.select().count() == 0
    assert files_in(db_path.parent / "chat.db-files") == []


def test_documents_are_exported_flat_from_the_repository():
    import localchat.repository as repo

    for name in document_ops.__all__:
        assert getattr(repo, name) is getattr(document_ops, name)


@pytest.mark.parametrize(
    "module",
    [
        "localchat.files",
        "localchat.files.disk",
        "localchat.files.store",
        "localchat.repository.documents",
        "localchat.repository.file_store",
    ],
)
def test_module_docstring_usage_example_runs(module, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    doc = importlib.import_module(module).__doc__
    block = re.search(r"\n\n((?:    .*\n|\n)+)", doc).group(1)
    exec(compile(textwrap.dedent(block), f"{module} docstring", "exec"), {})


DOC_BLOCKS = re.findall(
    r"```python\n(.*?)```",
    (Path(__file__).resolve().parent.parent / "docs" / "files.md").read_text(encoding="utf-8"),
    flags=re.S,
)


@pytest.mark.parametrize("code", DOC_BLOCKS, ids=[f"files.md#{i}" for i in range(len(DOC_BLOCKS))])
def test_files_documentation_example_runs(code, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/files.md", "exec"), {"__name__": "__docs__"})


def test_the_api_reference_documents_every_document_function():
    """Its examples run in tests/test_docs.py, with every other section's."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text("utf-8")
    start = text.index("\n## Documents\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end > 0 else None]
    for name in document_ops.__all__:
        assert f"`{name}(" in section


def test_move_rolled_back_in_a_savepoint_keeps_the_users_original(src, db_path):
    with local_session(db_path) as s:
        with pytest.raises(Boom):
            with s.savepoint():
                document_ops.create_document_with_file(s, src, move=True)
                raise Boom
    assert src.read_bytes() == b"Hello world"
    with local_session(db_path) as s:
        assert document_ops.list_documents(s) == []


def test_same_sized_damaged_shared_file_is_healed_not_reused(src, db_path, tmp_path):
    with local_session(db_path) as s:
        first = document_ops.create_document_with_file(s, src)
        stored = s.store.files_dir / first.stored_name
    stored.chmod(0o600)
    stored.write_bytes(b"Hello WORLD")  # same size, other bytes
    again = tmp_path / "again.txt"
    again.write_bytes(b"Hello world")
    with local_session(db_path) as s:
        second = document_ops.create_document_with_file(s, again, move=True)
        assert second.stored_name == first.stored_name
        with document_ops.open_document(s, second.id) as fh:
            assert fh.read() == b"Hello world"
    assert not again.exists()  # moved: its content is safely in the store
