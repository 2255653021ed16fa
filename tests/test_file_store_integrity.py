"""Rows and files never disagree: failures, rollbacks, crashes, verify/repair, cascades, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from localchat import ValidationError, local_session
from localchat.cli import main
from localchat.files import MARKER_PREFIX, TEMP_PREFIX
from localchat.models import Document
from localchat.repository import create_conversation, create_user, delete_conversation, delete_user
from localchat.repository import documents as document_ops

pytestmark = pytest.mark.src("a.txt", b"first")  # the `src` fixture's file


class Boom(Exception):
    pass


@pytest.fixture
def other(tmp_path: Path) -> Path:
    path = tmp_path / "inbox" / "b.txt"
    path.write_bytes(b"second")
    return path


@pytest.fixture
def files(db_path: Path) -> Path:
    return db_path.parent / "chat.db-files"


def names(folder: Path) -> list[str]:
    """The files in ``folder`` but the store's marker."""
    if not folder.exists():
        return []
    return sorted(n for n in os.listdir(folder) if not n.startswith(MARKER_PREFIX))


def clean(db_path: Path) -> bool:
    with local_session(db_path) as s:
        report = document_ops.verify_file_store(s)
    assert report.ok, report.issues
    return True


# -- injected failures ------------------------------------------------------------
def test_an_exception_between_the_file_write_and_the_commit_leaves_nothing(db_path, src, files):
    with pytest.raises(Boom):
        with local_session(db_path) as s:
            document_ops.create_document_with_file(s, src)
            assert len(names(files)) == 1
            raise Boom
    assert names(files) == [] and clean(db_path)


def test_a_failed_insert_after_the_write_removes_the_file_at_once(db_path, src, files, monkeypatch):
    def failing_create(**kwargs):
        raise Boom

    with local_session(db_path) as s:
        monkeypatch.setattr(Document, "create", failing_create)
        with pytest.raises(Boom):
            document_ops.create_document_with_file(s, src)
        assert names(files) == []
    assert clean(db_path)


def test_a_savepoint_rolled_back_alone_drops_its_file_at_commit(db_path, src, other, files):
    with local_session(db_path) as s:
        kept = document_ops.create_document_with_file(s, other)
        with pytest.raises(Boom):
            with s.savepoint():
                document_ops.create_document_with_file(s, src)
                raise Boom
    assert names(files) == [kept.stored_name] and clean(db_path)


def test_a_rollback_after_a_delete_keeps_the_row_and_its_file(db_path, src, files):
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, src)
    with pytest.raises(Boom):
        with local_session(db_path) as s:
            document_ops.delete_document(s, doc.id, delete_file=True)
            raise Boom
    assert names(files) == [doc.stored_name] and clean(db_path)


def test_a_delete_in_a_savepoint_rolled_back_alone_keeps_the_file(db_path, src, files):
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, src)
    with local_session(db_path) as s:
        with pytest.raises(Boom):
            with s.savepoint():
                document_ops.delete_document(s, doc.id, delete_file=True)
                raise Boom
    assert names(files) == [doc.stored_name] and clean(db_path)


def test_rolling_back_a_duplicate_keeps_the_shared_file(db_path, src, files):
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, src)
    with pytest.raises(Boom):
        with local_session(db_path) as s:
            document_ops.create_document_with_file(s, src, "copy.txt")
            raise Boom
    assert names(files) == [doc.stored_name] and clean(db_path)


def run(code: str, db_path: Path, src: Path) -> int:
    script = textwrap.dedent(
        """
        import os, sys
        from localchat import local_session
        from localchat.repository import documents as document_ops
        db_path, src = sys.argv[1], sys.argv[2]
        """
    ) + textwrap.dedent(code)
    proc = subprocess.run([sys.executable, "-c", script, str(db_path), str(src)], timeout=60)
    return proc.returncode


def test_a_crash_before_the_commit_leaves_only_an_orphan_that_repair_removes(db_path, src, files):
    code = """
        with local_session(db_path) as s:
            document_ops.create_document_with_file(s, src)
            os._exit(3)
    """
    assert run(code, db_path, src) == 3
    [orphan] = names(files)
    with local_session(db_path) as s:
        assert Document.select().count() == 0
        report = document_ops.verify_file_store(s)
        assert [(i.kind, i.name) for i in report.issues] == [("orphan", orphan)]
        dry = document_ops.repair_file_store(s)
        assert dry.removed == [orphan] and dry.dry_run
    assert names(files) == [orphan]  # a dry run changes nothing
    with local_session(db_path) as s:
        document_ops.repair_file_store(s, dry_run=False)
        assert names(files) == [orphan]  # removed after the commit
    assert names(files) == [] and clean(db_path)


def test_a_crash_after_the_commit_before_deleting_leaves_only_an_orphan(db_path, src, files):
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, src)
    code = f"""
        with local_session(db_path) as s:
            s.after_commit(lambda: os._exit(3))   # dies after the commit, before the unlink
            document_ops.delete_document(s, {doc.id}, delete_file=True)
    """
    assert run(code, db_path, src) == 3
    assert names(files) == [doc.stored_name]
    with local_session(db_path) as s:
        report = document_ops.repair_file_store(s, dry_run=False)
        assert report.removed == [doc.stored_name]
    assert names(files) == [] and clean(db_path)


# -- verify and repair ---------------------------------------------------------------
def test_verify_reports_missing_orphan_damaged_and_temporary_files(db_path, src, other, files):
    with local_session(db_path) as s:
        gone = document_ops.create_document_with_file(s, src)
        resized = document_ops.create_document_with_file(s, other)
        same_size = document_ops.create_document_with_file(s, src, storage_dir=db_path.parent / "x")
    (files / gone.stored_name).unlink()
    (files / resized.stored_name).write_bytes(b"longer than before")
    Path(same_size.path).write_bytes(b"FIRST")
    (files / "0123456789abcdef0123456789abcdef.pdf").write_bytes(b"stray")
    (files / f"{TEMP_PREFIX}abc").write_bytes(b"half")
    (files / "subdir").mkdir()
    with local_session(db_path) as s:
        report = document_ops.verify_file_store(s)
        quick = document_ops.verify_file_store(s, hashes=False)
    found = {(i.kind, i.name) for i in report.issues}
    assert found == {
        ("missing", gone.stored_name),
        ("size_mismatch", resized.stored_name),
        ("hash_mismatch", same_size.stored_name),
        ("orphan", "0123456789abcdef0123456789abcdef.pdf"),
        ("orphan", f"{TEMP_PREFIX}abc"),
        ("not_a_file", "subdir"),
    }
    assert ("hash_mismatch", same_size.stored_name) not in {(i.kind, i.name) for i in quick.issues}
    assert [i.document_ids for i in report.missing] == [(gone.id,)]
    assert json.loads(json.dumps(report.to_dict()))["ok"] is False
    with local_session(db_path) as s:
        repaired = document_ops.repair_file_store(s, dry_run=False)
    assert repaired.removed == [f"{TEMP_PREFIX}abc", "0123456789abcdef0123456789abcdef.pdf"]
    assert {i.kind for i in repaired.remaining} == {
        "missing",
        "size_mismatch",
        "hash_mismatch",
        "not_a_file",
    }
    assert sorted(names(files)) == sorted([resized.stored_name, "subdir"])


def test_a_metadata_document_pointing_into_the_store_protects_that_file(db_path, src, files):
    name, path = document_ops.store_local_file(src, files)
    with local_session(db_path) as s:
        assert [i.kind for i in document_ops.verify_file_store(s).issues] == ["orphan"]
        document_ops.create_document(s, "a.txt", path)
        assert document_ops.repair_file_store(s, dry_run=False).removed == []
    assert names(files) == [name] and clean(db_path)


def test_storing_the_same_content_again_heals_a_missing_file(db_path, src, files):
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, src)
    (files / doc.stored_name).unlink()
    with local_session(db_path) as s:
        again = document_ops.create_document_with_file(s, src, "again.txt")
    assert again.stored_name == doc.stored_name
    assert (files / doc.stored_name).read_bytes() == b"first" and clean(db_path)


def test_verify_is_clean_on_an_empty_store_and_creates_nothing(db_path, files):
    with local_session(db_path) as s:
        report = document_ops.verify_file_store(s)
    assert report.ok and report.documents == 0 and not files.exists()


# -- deleting owners ---------------------------------------------------------------
def test_deleting_a_user_removes_their_documents_and_unshared_files_after_commit(
    db_path, src, other, files
):
    with local_session(db_path) as s:
        ada = create_user(s, email="ada@example.org")
        bob = create_user(s, email="bob@example.org")
        conv = create_conversation(s, user_id=ada.id, title="t")
        own = document_ops.create_document_with_file(s, src, user_id=ada.id)
        in_chat = document_ops.create_document_with_file(s, other, conversation_id=conv.id)
        shared = document_ops.create_document_with_file(s, src, user_id=bob.id)
    with local_session(db_path) as s:
        assert delete_user(s, ada.id)
        assert names(files) == sorted([own.stored_name, in_chat.stored_name])
    assert names(files) == [shared.stored_name]  # bob's copy shares ada's file
    with local_session(db_path) as s:
        assert [d.id for d in Document.select()] == [shared.id]
    assert clean(db_path)


def test_a_rolled_back_user_deletion_keeps_every_file(db_path, src, files):
    with local_session(db_path) as s:
        ada = create_user(s, email="ada@example.org")
        doc = document_ops.create_document_with_file(s, src, user_id=ada.id)
    with pytest.raises(Boom):
        with local_session(db_path) as s:
            delete_user(s, ada.uuid)
            raise Boom
    assert names(files) == [doc.stored_name] and clean(db_path)


def test_deleting_a_conversation_removes_its_documents_and_files(db_path, src, other, files):
    with local_session(db_path) as s:
        conv = create_conversation(s, title="t")
        doc = document_ops.create_document_with_file(s, src, conversation_id=conv.id)
        loose = document_ops.create_document_with_file(s, other)
    with local_session(db_path) as s:
        assert delete_conversation(s, conv.id)
        assert document_ops.get_document(s, doc.id) is None
    assert names(files) == [loose.stored_name] and clean(db_path)


# -- command line ---------------------------------------------------------------
def test_cli_files_verify_and_repair(db_path, src, files, capsys):
    with local_session(db_path) as s:
        document_ops.create_document_with_file(s, src)
    assert main(["--db", str(db_path), "files", "verify"]) == 0
    assert "ok: rows and files agree." in capsys.readouterr().out
    stray = files / "0123456789abcdef0123456789abcdef"
    stray.write_bytes(b"x")
    assert main(["files", "verify", "--db", str(db_path)]) == 1
    assert "orphan" in capsys.readouterr().out
    assert main(["--db", str(db_path), "files", "repair"]) == 1
    assert "would remove 0123456789abcdef0123456789abcdef" in capsys.readouterr().out
    assert stray.exists()
    assert main(["--db", str(db_path), "files", "repair", "--apply", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["removed"] == [stray.name] and out["dry_run"] is False
    assert not stray.exists()
    assert main(["--db", str(db_path), "files", "verify", "--quick"]) == 0


def test_cli_files_verify_does_not_create_a_database(tmp_path, capsys):
    target = tmp_path / "none" / "chat.db"
    assert main(["--db", str(target), "files", "verify"]) == 0
    assert not target.exists() and not target.parent.exists()


def test_release_owned_files_needs_an_owner_and_ignores_unknown_ones(db_path):
    with local_session(db_path) as s:
        with pytest.raises(ValidationError, match="user_id or a conversation_id"):
            document_ops.release_owned_files(s)
        assert document_ops.release_owned_files(s, user_id=999) == 0
        assert document_ops.release_owned_files(s, conversation_id="no-such-uuid") == 0
