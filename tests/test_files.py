"""The file store's mechanics: names, hostile input, writes, symlinks, limits, rollback hooks."""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path

import pytest

from localchat import FileStoreError, NotFound, ValidationError, local_session, open_store
from localchat.files import (
    MARKER_PREFIX,
    TEMP_PREFIX,
    clean_filename,
    guess_mime_type,
    is_stored_name,
    safe_extension,
    store_local_file,
)
from localchat.models import Document
from localchat.repository import documents as document_ops

pytestmark = pytest.mark.src("Report.TXT", b"hello, world\n")  # the `src` fixture's file

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and FIFOs")
STORED = re.compile(r"[0-9a-f]{32}(\.[a-z0-9]{1,16})?")


class Boom(Exception):
    pass


def tree(root: Path) -> set[str]:
    """Every path under ``root`` (SQLite's -wal/-shm/-journal files, markers left out)."""
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if not re.search(r"\.db-(wal|shm|journal)$", p.name)
        and not p.name.startswith(MARKER_PREFIX)
    }


def entries(folder: Path) -> list[str]:
    """The names in ``folder`` but the store's marker."""
    return sorted(n for n in os.listdir(folder) if not n.startswith(MARKER_PREFIX))


# -- names ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("/etc/passwd", "passwd"),
        ("C:\\Users\\ada\\notes.txt", "notes.txt"),
        ("a\0b.txt", "ab.txt"),
        ("tab\there\n.md", "tabhere.md"),
        ("CON", "CON"),
        ("NUL.txt", "NUL.txt"),
        ("...", "unnamed"),
        ("..", "unnamed"),
        ("", "unnamed"),
        ("   ", "unnamed"),
        ("dir/", "unnamed"),
        ("\udcff\udcfe.txt", "\ufffd\ufffd.txt"),  # undecodable bytes (surrogateescape)
        ("\ud800x.txt", "\ufffdx.txt"),  # a lone surrogate
        (b"caf\xc3\xa9.txt", "café.txt"),
    ],
)
def test_clean_filename_keeps_a_safe_display_name(given, kept):
    assert clean_filename(given) == kept


def test_clean_filename_cuts_a_1000_character_name_to_255_keeping_the_extension():
    name = clean_filename("x" * 1000 + ".pdf")
    assert len(name) == 255 and name.endswith(".pdf")


@pytest.mark.parametrize(
    ("name", "ext"),
    [
        ("Report.PDF", ".pdf"),
        ("archive.tar.gz", ".gz"),
        ("noext", ""),
        (".bashrc", ""),
        ("evil.p/hp", ""),
        ("../x.sh", ".sh"),
        ("x." + "a" * 17, ""),
        ("x.tx\u0442", ""),  # non-ASCII extension
        ("x.t t", ""),
        ("\udcff.txt", ".txt"),
    ],
)
def test_safe_extension_is_short_lowercase_ascii_or_nothing(name, ext):
    assert safe_extension(name) == ext


@pytest.mark.parametrize(
    "name", ["../x", "a" * 32 + "/..", "A" * 32, "", None, "a" * 32 + ".", "a" * 31]
)
def test_is_stored_name_refuses_anything_the_store_does_not_make(name):
    assert not is_stored_name(name)


@pytest.mark.parametrize(
    ("filename", "head", "mime"),
    [
        ("a.pdf", b"", "application/pdf"),
        ("a.TXT", b"", "text/plain"),
        ("noext", b"%PDF-1.7", "application/pdf"),
        ("noext", b"\x89PNG\r\n\x1a\n....", "image/png"),
        ("noext", b"\x00\x01", "application/octet-stream"),
    ],
)
def test_mime_type_comes_from_the_extension_then_the_content(filename, head, mime):
    assert guess_mime_type(filename, head) == mime


# -- hostile names end to end ------------------------------------------------------
HOSTILE = [
    "../../etc/passwd",
    "/etc/passwd",
    "..\\..\\windows\\system32\\config",
    "a\0b.txt",
    "CON",
    "NUL.txt",
    "x" * 1000 + ".txt",
    "\udcff\udcfe.txt",
    "\ud800.pdf",
    "...",
    "..",
    ".",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_write_one_file_inside_the_store_and_nothing_else(db_path, src, name):
    root = db_path.parent.parent
    with local_session(db_path) as s:
        document_ops.create_document(s, "warm-up.txt", None)  # create the database first
    before = tree(root)
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, src, name)
        assert STORED.fullmatch(doc.stored_name)
        assert len(doc.filename) <= 255 and "\0" not in doc.filename
        doc.filename.encode("utf-8")  # storable text
        with document_ops.open_document(s, doc.id) as fh:
            assert fh.read() == src.read_bytes()
    added = tree(root) - before
    assert added <= {"store/chat.db-files", f"store/chat.db-files/{doc.stored_name}"}
    assert f"store/chat.db-files/{doc.stored_name}" in added
    assert not [p for p in root.rglob("*") if p.is_symlink()]


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS refuses non-UTF-8 file names")
def test_a_source_file_with_a_non_utf8_name_is_stored(db_path, tmp_path):
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9 \xff.TXT")
    with open(raw, "wb") as fh:
        fh.write(b"bytes")
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, os.fsdecode(raw))
    assert doc.filename == "caf\ufffd \ufffd.TXT"
    assert doc.stored_name.endswith(".txt")


@pytest.mark.parametrize("bad", ["bad\0dir", "a/\0"])
def test_a_storage_dir_with_a_nul_byte_is_refused(db_path, src, bad):
    with local_session(db_path) as s:
        with pytest.raises(ValidationError, match="NUL"):
            document_ops.create_document_with_file(s, src, "a.txt", storage_dir=bad)


# -- writes ----------------------------------------------------------------------
@posix_only
def test_store_folder_is_private_and_files_are_0600(db_path, src):
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, src)
    files = db_path.parent / "chat.db-files"
    assert stat.S_IMODE(files.stat().st_mode) == 0o700
    assert stat.S_IMODE((files / doc.stored_name).stat().st_mode) == 0o600


def test_store_local_file_copies_by_default_and_moves_on_request(tmp_path, src):
    name, path = store_local_file(src, tmp_path / "docs")
    assert src.exists() and path == (tmp_path / "docs" / name).resolve()
    assert path.read_bytes() == src.read_bytes() and name.endswith(".txt")
    name2, path2 = store_local_file(src, tmp_path / "docs", move=True)
    assert not src.exists() and path2.read_bytes() == b"hello, world\n" and name2 != name


def test_a_failed_copy_leaves_no_temporary_file(tmp_path, src, monkeypatch):
    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(FileStoreError, match="No space left"):
        store_local_file(src, tmp_path / "docs")
    assert list((tmp_path / "docs").iterdir()) == []
    assert src.exists()


@pytest.mark.parametrize("limit", [0, 12])
def test_max_bytes_refuses_larger_files_and_leaves_no_trace(db_path, src, limit):
    with local_session(db_path) as s:
        with pytest.raises(ValidationError, match=f"over {limit} bytes"):
            document_ops.create_document_with_file(s, src, max_bytes=limit)
        assert Document.select().count() == 0
    assert entries(db_path.parent / "chat.db-files") == []
    assert src.exists()


def test_max_bytes_accepts_a_file_of_exactly_the_limit(db_path, src):
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, src, max_bytes=src.stat().st_size)
    assert doc.size == src.stat().st_size


@pytest.mark.parametrize("limit", [-1, 1.5, "10", True])
def test_max_bytes_must_be_a_whole_number(db_path, src, limit):
    with local_session(db_path) as s:
        with pytest.raises(ValidationError, match="max_bytes"):
            document_ops.create_document_with_file(s, src, max_bytes=limit)


def test_a_missing_source_is_not_found(db_path, tmp_path):
    with local_session(db_path) as s:
        with pytest.raises(NotFound, match="does not exist"):
            document_ops.create_document_with_file(s, tmp_path / "nope.txt")


@posix_only
@pytest.mark.parametrize("kind", ["folder", "fifo", "device"])
def test_a_source_that_is_not_a_regular_file_is_refused(db_path, tmp_path, kind):
    if kind == "folder":
        source = tmp_path / "folder"
        source.mkdir()
    elif kind == "fifo":
        source = tmp_path / "pipe"
        os.mkfifo(source)
    else:
        source = Path("/dev/zero")
    with local_session(db_path) as s:
        with pytest.raises(ValidationError, match="not a regular file|is a folder"):
            document_ops.create_document_with_file(s, source, "x.bin")
        assert Document.select().count() == 0
    assert entries(db_path.parent / "chat.db-files") == []


# -- symlinks --------------------------------------------------------------------
@posix_only
def test_a_symlinked_source_is_read_through_and_move_removes_only_the_link(db_path, src):
    link = src.parent / "link.txt"
    link.symlink_to(src)
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, link, move=True)
    files = db_path.parent / "chat.db-files"
    stored = files / doc.stored_name
    assert not stored.is_symlink() and stored.read_bytes() == src.read_bytes()
    assert not os.path.lexists(link) and src.exists()


@posix_only
def test_a_symlinked_files_folder_is_followed_and_no_link_is_created(db_path, src, tmp_path):
    elsewhere = tmp_path / "other-disk"
    elsewhere.mkdir(mode=0o700)
    db_path.parent.mkdir(parents=True)
    (db_path.parent / "chat.db-files").symlink_to(elsewhere, target_is_directory=True)
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, src)
        assert document_ops.verify_file_store(s).ok
    assert (elsewhere / doc.stored_name).read_bytes() == src.read_bytes()
    assert [p for p in tmp_path.rglob("*") if p.is_symlink()] == [db_path.parent / "chat.db-files"]
    with local_session(db_path) as s:
        assert document_ops.delete_document(s, doc.id, delete_file=True)
    assert entries(elsewhere) == []


@posix_only
def test_a_symlink_planted_in_the_store_is_never_followed(db_path, src, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"do not read")
    with local_session(db_path) as s:
        doc = document_ops.create_document_with_file(s, src)
    stored = db_path.parent / "chat.db-files" / doc.stored_name
    stored.unlink()
    stored.symlink_to(secret)
    with local_session(db_path) as s:
        with pytest.raises(FileStoreError):
            document_ops.open_document(s, doc.id)
        report = document_ops.verify_file_store(s)
        assert [i.kind for i in report.issues] == ["not_a_file"]
        document_ops.delete_document(s, doc.id, delete_file=True)
    assert not os.path.lexists(stored) and secret.read_bytes() == b"do not read"


@pytest.mark.parametrize("stored_name", ["../victim.txt", "{victim}", "short.txt"])
@pytest.mark.parametrize("path", [None, "{victim}"])
def test_a_tampered_row_is_reported_and_never_opened_or_deleted(db_path, stored_name, path):
    victim = db_path.parent / "victim.txt"
    db_path.parent.mkdir(parents=True)
    victim.write_bytes(b"keep me")
    with local_session(db_path) as s:
        doc = document_ops.create_document(s, "x.txt", None)
        tampered = {"stored_name": stored_name.format(victim=victim)}
        if path:
            tampered["path"] = path.format(victim=victim)
        Document.update(**tampered).where(Document.id == doc.id).execute()
        report = document_ops.verify_file_store(s)
        assert [(i.kind, i.document_ids) for i in report.issues] == [("missing", (doc.id,))]
        with pytest.raises(FileStoreError):
            document_ops.open_document(s, doc.id)
        assert document_ops.delete_document(s, doc.id, delete_file=True)
        report = document_ops.repair_file_store(s, dry_run=False)
    assert victim.read_bytes() == b"keep me"


# -- the session's rollback hooks ----------------------------------------------------
def test_after_rollback_runs_on_rollback_only(db_path):
    calls: list[str] = []
    with local_session(db_path) as s:
        s.after_rollback(lambda: calls.append("committed?"))
    assert calls == []
    with pytest.raises(Boom):
        with local_session(db_path) as s:
            s.after_rollback(lambda: calls.append("rolled back"))
            raise Boom
    assert calls == ["rolled back"]
    with local_session(db_path):
        pass
    assert calls == ["rolled back"]  # nothing left over for the next transaction


def test_after_rollback_hooks_of_a_nested_session_run_when_the_outer_one_rolls_back(db_path):
    calls: list[str] = []
    store = open_store(db_path)
    with pytest.raises(Boom):
        with store.session():
            with store.session() as inner:
                inner.after_rollback(lambda: calls.append("inner"))
            assert calls == []
            raise Boom
    assert calls == ["inner"]


def test_a_failing_rollback_hook_does_not_hide_the_original_error(db_path, caplog):
    calls: list[str] = []

    def bad() -> None:
        raise RuntimeError("hook failed")

    with pytest.raises(Boom):
        with local_session(db_path) as s:
            s.after_rollback(bad)
            s.after_rollback(lambda: calls.append("still ran"))
            raise Boom
    assert calls == ["still ran"]
    assert "rollback hook" in caplog.text


def test_no_temporary_file_survives_a_stored_document(db_path, src):
    with local_session(db_path) as s:
        document_ops.create_document_with_file(s, src)
    names = entries(db_path.parent / "chat.db-files")
    assert len(names) == 1 and not names[0].startswith(TEMP_PREFIX)
