"""Portable backup and restore: round trip, writers during a backup, refusals, crashes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest

from localchat import (
    ArchiveError,
    ForeignDatabase,
    NotFound,
    SchemaTooNew,
    StoreBusy,
    Unsupported,
    close_all,
    get_session,
    open_store,
)
from localchat.backup import backup_store, restore_store
from localchat.cli import main
from localchat.factories import Factories
from localchat.progress import TerminalProgress
from localchat.repository import (
    add_message,
    create_web_session,
    log_generation,
    record_response,
    verify_file_store,
)
from localchat.schema import MIGRATIONS_DIR
from localchat.store_swap import journal_path

# -- helpers -------------------------------------------------------------------


def _fill(path: Path, who: str = "ada") -> None:
    """A store with a row in every table, a branch, unicode, and stored files."""
    with get_session(path) as s:
        make = Factories(s)
        ada = make.user(username=who, email=f"{who}@example.org", password="pw-1")
        create_web_session(s, f"token-{who}", ada.id)
        conv = make.conversation(user=ada, title="Zürich ✈ plans")
        q = add_message(s, conv.id, "user", "where do penguins live? 🐧")
        a = add_message(s, conv.id, "assistant", "on ice")
        add_message(s, conv.id, "assistant", "a sibling branch", parent_id=q.id)
        record_response(s, a.id, "llama3", 10, 20, 30, 400, options={"temperature": 0.2})
        make.document(user=ada, conversation=conv, filename="résumé.pdf", content=b"%PDF \x00\xff")
        make.document(user=ada, content=f"notes of {who} ✓")
        make.document(user=ada, content=None, filename="metadata only")
        make.prompt()
        make.model()
        make.knowledge_chunk(title="Penguins", content="emperor penguins breed in winter")
        log_generation(s, str(ada.id), "plan", {"a": 1}, {"b": 2})
    close_all()


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (search index included), in order."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            t: sorted(map(tuple, conn.execute(f'SELECT * FROM "{t}"')), key=repr) for t in tables
        }
    finally:
        conn.close()


def _files(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _identity(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(conn.execute("SELECT uuid FROM store_identity").fetchone()[0])
    finally:
        conn.close()


def _state(path: Path) -> tuple[Any, ...]:
    """Everything a refused restore must leave exactly as it was."""
    close_all()
    rows = _dump(path)  # first: a read-only connection may leave -wal/-shm beside it
    names = sorted(p.name for p in path.parent.iterdir())
    return names, rows, _files(Path(f"{path}-files"))


def _emails(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return sorted(email for (email,) in conn.execute("SELECT email FROM user"))
    finally:
        conn.close()


def _archive(
    where: Path,
    entries: dict[str, bytes],
    *,
    manifest: dict[str, Any] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
    **changes: Any,
) -> Path:
    """A zip with a manifest describing ``entries`` (``changes`` override manifest keys)."""
    if manifest is None:
        manifest = {
            "format": "localchat-backup",
            "format_version": 1,
            "schema_version": "x",
            "entries": [
                {"name": n, "size": len(b), "sha256": hashlib.sha256(b).hexdigest()}
                for n, b in entries.items()
            ],
        }
    manifest.update(changes)
    with zipfile.ZipFile(where, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        zf.writestr("manifest.json", json.dumps(manifest))
    return where


def _snapshot_bytes(path: Path) -> bytes:
    """The database as one file (online backup, journal mode DELETE)."""
    close_all()
    target = path.with_name("snapshot-copy.db")
    src, dst = sqlite3.connect(str(path)), sqlite3.connect(str(target))
    src.backup(dst)
    dst.execute("PRAGMA journal_mode = DELETE")
    src.close()
    dst.close()
    data = target.read_bytes()
    target.unlink()
    return data


def _refused(archive: Any, store_path: Path, error: type[Exception], match: str, **kw: Any) -> None:
    """``restore_store`` raises ``error`` (message matching) and the store stays as it was."""
    before = _state(store_path)
    with pytest.raises(error, match=match):
        restore_store(archive, store_path, **kw)
    assert _state(store_path) == before


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "store" / "chat.db"
    _fill(path)
    return path


@pytest.fixture
def other_archive(tmp_path: Path) -> Path:
    """An archive of another store (user "bob"), for replacing ``store_path``."""
    other = tmp_path / "other" / "bob.db"
    _fill(other, "bob")
    return Path(backup_store(tmp_path / "bob.zip", other).archive)


# -- round trip ----------------------------------------------------------------


def test_round_trip_keeps_every_table_and_every_file_byte(store_path, tmp_path):
    result = backup_store(tmp_path / "b.zip", store_path)
    assert result.files == 2 and not result.skipped
    copy = tmp_path / "elsewhere" / "copy.db"
    restored = restore_store(result.archive, copy)
    assert restored.kept is None and restored.upgraded == []
    assert _dump(copy) == _dump(store_path)
    assert _files(Path(f"{copy}-files")) == _files(Path(f"{store_path}-files"))
    with get_session(copy, readonly=True) as s:
        assert verify_file_store(s).ok


def test_the_restored_store_owns_its_files_and_can_delete_them(store_path, tmp_path):
    archive = backup_store(tmp_path / "b.zip", store_path).archive
    copy = tmp_path / "copy" / "chat.db"
    restore_store(archive, copy)
    marker = f".localchat-store-{_identity(copy)}"
    assert marker in _files(Path(f"{copy}-files"))
    from localchat.repository import delete_document, list_documents

    with get_session(copy) as s:
        doc = next(d for d in list_documents(s) if d.filename == "résumé.pdf")
        where = Path(doc.path)
        delete_document(s, doc.id, delete_file=True)
    assert not where.exists()


def test_restore_keeps_the_previous_store_beside_it_and_it_opens(store_path, other_archive):
    before = _dump(store_path)
    result = restore_store(other_archive, store_path)
    assert _emails(store_path) == ["bob@example.org"]
    kept = Path(result.kept or "")
    assert kept.name.startswith("chat.db.pre-restore-") and _dump(kept) == before
    assert any(n.endswith(".txt") for n in _files(Path(f"{kept}-files")))
    with get_session(kept, readonly=True) as s:  # the kept pair is a store of its own
        assert verify_file_store(s).ok
    assert not journal_path(store_path).exists()


def test_a_store_object_opened_before_the_restore_sees_the_restored_store(
    store_path, other_archive
):
    store = open_store(store_path)
    with store.session() as s:
        Factories(s).user(email="late@example.org")
    restore_store(other_archive, store_path)
    with store.session() as s:
        Factories(s).document(content=b"after the restore")
        assert verify_file_store(s).ok


def test_files_of_an_old_store_in_files_folder_are_carried_into_the_own_folder(tmp_path):
    path = tmp_path / "old" / "chat.db"
    _fill(path)
    own, legacy = Path(f"{path}-files"), path.parent / "files"
    legacy.mkdir()
    name = next(n for n in _files(own) if n.endswith(".txt"))
    (own / name).rename(legacy / name)  # where a store made before 0005 kept it
    result = backup_store(tmp_path / "b.zip", path)
    assert result.files == 2
    copy = tmp_path / "copy" / "chat.db"
    restore_store(result.archive, copy)
    assert (Path(f"{copy}-files") / name).read_bytes() == (legacy / name).read_bytes()


def test_a_storage_dir_file_is_restored_into_the_own_folder(tmp_path):
    path = tmp_path / "s" / "chat.db"
    with get_session(path) as s:
        Factories(s).document(content=b"kept elsewhere", storage_dir=tmp_path / "docs")
    archive = backup_store(tmp_path / "b.zip", path).archive
    copy = tmp_path / "c" / "chat.db"
    restore_store(archive, copy)
    from localchat.repository import list_documents, open_document

    with get_session(copy, readonly=True) as s:
        (doc,) = list_documents(s)
        assert doc.recorded_path is None and Path(doc.path).parent == Path(f"{copy}-files")
        with open_document(s, doc.id) as fh:
            assert fh.read() == b"kept elsewhere"


# -- backup while writing --------------------------------------------------------


def test_backup_while_a_thread_appends_messages_is_consistent_and_never_fails_a_writer(
    store_path, tmp_path
):
    with get_session(store_path) as s:
        conv = Factories(s).conversation()
    stop, errors, written = threading.Event(), [], [0]

    def writer() -> None:
        try:
            while not stop.is_set():
                with get_session(store_path) as s:
                    add_message(s, conv.id, "user", f"message {written[0]}")
                written[0] += 1
        except Exception as exc:  # pragma: no cover - the failure being tested for
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while written[0] < 20:
            threading.Event().wait(0.01)
        archive = backup_store(tmp_path / "live.zip", store_path).archive
        at_backup = written[0]
        while written[0] < at_backup + 20:  # the writer goes on after the backup
            threading.Event().wait(0.01)
    finally:
        stop.set()
        thread.join()
    assert not errors
    copy = tmp_path / "copy" / "chat.db"
    restore_store(archive, copy)
    conn = sqlite3.connect(str(copy))
    (count,) = conn.execute(
        "SELECT count(*) FROM message WHERE conversation_id = ?", (conv.id,)
    ).fetchone()
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    assert 20 <= count < written[0]


def test_a_file_deleted_after_the_snapshot_is_listed_as_skipped(store_path, tmp_path, monkeypatch):
    from localchat import backup

    real = backup._snapshot

    def snapshot_then_delete(*args: Any) -> Any:
        files, history, identity = real(*args)
        files[0][1].unlink()  # a commit after the snapshot deleted this document's file
        return files, history, identity

    monkeypatch.setattr(backup, "_snapshot", snapshot_then_delete)
    result = backup_store(tmp_path / "b.zip", store_path)
    assert result.files == 1 and len(result.skipped) == 1
    assert "missing" in result.skipped[0]["reason"]
    with zipfile.ZipFile(result.archive) as zf:
        assert json.loads(zf.read("manifest.json"))["skipped"] == result.skipped


# -- refusals: the store stays exactly as it was --------------------------------


def _hostile(tmp_path: Path, store_path: Path, kind: str) -> Path:
    db = _snapshot_bytes(store_path)
    where = tmp_path / f"{kind}.zip"
    if kind == "not-a-zip":
        where.write_bytes(b"PK but not really a zip archive")
        return where
    if kind == "dot-dot":
        return _archive(where, {"database.sqlite": db, "../evil.txt": b"x"})
    if kind == "absolute":
        return _archive(where, {"database.sqlite": db, "/tmp/evil.txt": b"x"})
    if kind == "nested-dot-dot":
        return _archive(where, {"database.sqlite": db, "files/../../evil": b"x"})
    if kind == "unknown-name":
        return _archive(where, {"database.sqlite": db, "files/notes.txt": b"x"})
    if kind == "no-manifest":
        with zipfile.ZipFile(where, "w") as zf:
            zf.writestr("database.sqlite", db)
        return where
    if kind == "manifest-not-json":
        with zipfile.ZipFile(where, "w") as zf:
            zf.writestr("database.sqlite", db)
            zf.writestr("manifest.json", "{not json")
        return where
    if kind == "newer-format":
        return _archive(where, {"database.sqlite": db}, format_version=99)
    if kind == "bomb-declared-small":
        big = b"\0" * (8 << 20)
        m = {"format": "localchat-backup", "format_version": 1, "entries": [
            {"name": "database.sqlite", "size": len(db), "sha256": hashlib.sha256(db).hexdigest()},
            {"name": "files/" + "a" * 32, "size": 10, "sha256": hashlib.sha256(big).hexdigest()},
        ]}  # fmt: skip
        return _archive(where, {"database.sqlite": db, "files/" + "a" * 32: big}, manifest=m)
    if kind == "bad-hash":
        archive = _archive(where, {"database.sqlite": db, "files/" + "b" * 32: b"good"})
        with zipfile.ZipFile(archive) as zf:
            manifest = json.loads(zf.read("manifest.json"))
        manifest["entries"][1]["sha256"] = hashlib.sha256(b"evil").hexdigest()
        return _archive(
            where, {"database.sqlite": db, "files/" + "b" * 32: b"good"}, manifest=manifest
        )
    if kind == "flipped-byte":
        archive = _archive(where, {"database.sqlite": db, "files/" + "b" * 32: b"good" * 99},
                           compression=zipfile.ZIP_STORED)  # fmt: skip
        archive.write_bytes(archive.read_bytes().replace(b"goodgood", b"goodgoxd", 1))
        return archive
    if kind == "corrupt-database":
        broken = bytearray(db)
        broken[len(broken) // 2 : len(broken) // 2 + 4096] = os.urandom(4096)
        return _archive(where, {"database.sqlite": bytes(broken)})
    if kind == "not-localchat":
        conn = sqlite3.connect(str(tmp_path / "foreign.db"))
        conn.execute("CREATE TABLE t(x)")
        conn.commit()
        conn.close()
        return _archive(where, {"database.sqlite": (tmp_path / "foreign.db").read_bytes()})
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "not-a-zip",
        "dot-dot",
        "absolute",
        "nested-dot-dot",
        "unknown-name",
        "no-manifest",
        "manifest-not-json",
        "newer-format",
        "bomb-declared-small",
        "bad-hash",
        "flipped-byte",
        "corrupt-database",
        "not-localchat",
    ],  # fmt: skip
)
def test_a_hostile_or_damaged_archive_is_refused_and_the_store_untouched(
    store_path, tmp_path, kind
):
    archive = _hostile(tmp_path, store_path, kind)
    _refused(archive, store_path, ArchiveError, "Nothing was changed")


def test_an_archive_larger_than_max_bytes_is_refused_before_unpacking(store_path, tmp_path):
    archive = backup_store(tmp_path / "b.zip", store_path).archive
    _refused(archive, store_path, ArchiveError, "more than the 1000 allowed", max_bytes=1000)


def test_a_snapshot_from_a_newer_localchat_is_refused(store_path, tmp_path):
    copy = tmp_path / "newer.db"
    copy.write_bytes(_snapshot_bytes(store_path))
    conn = sqlite3.connect(str(copy))
    conn.execute(
        "INSERT INTO schema_migration (name, applied) VALUES ('0099_future', '2030-01-01')"
    )
    conn.commit()
    conn.close()
    archive = _archive(tmp_path / "newer.zip", {"database.sqlite": copy.read_bytes()})
    _refused(archive, store_path, SchemaTooNew, "0099_future")


def test_a_snapshot_from_an_older_localchat_is_upgraded(store_path, tmp_path):
    old = tmp_path / "old" / "chat.db"
    _fill(old, "olga")
    open_store(old).downgrade("0004_message_bumps_conversation")
    close_all()
    archive = _archive(tmp_path / "old.zip", {"database.sqlite": _snapshot_bytes(old)})
    result = restore_store(archive, store_path)
    shipped = sorted(p.stem for p in MIGRATIONS_DIR.glob("0*.py"))
    assert result.upgraded == shipped[shipped.index("0005_store_identity") :]
    assert result.schema_version == shipped[-1]
    assert _emails(store_path) == ["olga@example.org"]
    assert f".localchat-store-{_identity(store_path)}" in _files(Path(f"{store_path}-files"))
    with get_session(store_path) as s:
        Factories(s).document(content=b"a new file in the restored store")


def test_restore_refuses_a_store_another_connection_has_open(store_path, other_archive):
    before = _state(store_path)
    conn = sqlite3.connect(str(store_path))
    conn.execute("SELECT count(*) FROM user").fetchone()
    try:
        with pytest.raises(StoreBusy, match="in use"):
            restore_store(other_archive, store_path, wait=0.2)
    finally:
        conn.close()
    assert _state(store_path) == before


def test_restore_never_replaces_another_applications_database(other_archive, tmp_path):
    foreign = tmp_path / "their.db"
    conn = sqlite3.connect(str(foreign))
    conn.execute("CREATE TABLE notes(x)")
    conn.commit()
    conn.close()
    before = foreign.read_bytes()
    with pytest.raises(ForeignDatabase):
        restore_store(other_archive, foreign)
    assert foreign.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("their")) == ["their.db"]


def test_a_snapshot_missing_localchat_tables_is_refused(store_path, tmp_path):
    fake = tmp_path / "fake.db"
    conn = sqlite3.connect(str(fake))
    conn.execute("CREATE TABLE schema_migration (id INTEGER PRIMARY KEY, name TEXT, applied TEXT)")
    for name in sorted(p.stem for p in MIGRATIONS_DIR.glob("0*.py")):
        conn.execute("INSERT INTO schema_migration (name, applied) VALUES (?, '')", (name,))
    conn.commit()
    conn.close()
    archive = _archive(tmp_path / "fake.zip", {"database.sqlite": fake.read_bytes()})
    _refused(archive, store_path, ArchiveError, "localchat's tables")


def test_while_a_restore_holds_the_store_opening_it_is_refused_as_busy(store_path):
    from localchat import store_swap

    with store_swap.hold(store_path):
        close_all()
        with pytest.raises(StoreBusy, match="being restored"):
            with get_session(store_path, readonly=True):
                pass
    with get_session(store_path, readonly=True) as s:  # and works again afterwards
        assert verify_file_store(s).ok
    assert not journal_path(store_path).exists()


def test_progress_is_reported_up_to_the_total_both_ways(store_path, tmp_path):
    seen: list[tuple[int, int, int, int]] = []
    result = backup_store(tmp_path / "b.zip", store_path, progress=lambda *a: seen.append(a))
    assert seen[-1] == (result.total_bytes, result.total_bytes, 3, 3)
    seen.clear()
    restore_store(result.archive, tmp_path / "c" / "chat.db", progress=lambda *a: seen.append(a))
    assert seen[-1] == (result.total_bytes, result.total_bytes, 3, 3)


def test_a_postgresql_store_is_refused_with_a_pg_dump_hint(tmp_path):
    url = "postgresql://nobody@127.0.0.1:1/none"
    with pytest.raises(Unsupported, match="pg_dump"):
        backup_store(tmp_path / "b.zip", url=url)
    with pytest.raises(Unsupported, match="pg_restore"):
        restore_store(tmp_path / "b.zip", url=url)


def test_backup_never_replaces_an_existing_file_and_needs_a_store(store_path, tmp_path):
    (tmp_path / "taken.zip").write_bytes(b"mine")
    with pytest.raises(Exception, match="already exists"):
        backup_store(tmp_path / "taken.zip", store_path)
    assert (tmp_path / "taken.zip").read_bytes() == b"mine"
    with pytest.raises(NotFound):
        backup_store(tmp_path / "x.zip", tmp_path / "none.db")
    assert not (tmp_path / "none.db").exists()
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


# -- kill -9 during restore -----------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from localchat import backup, store_swap
    archive, db, where = sys.argv[1], sys.argv[2], sys.argv[3]
    die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    if where == "unpacking":
        backup._check_snapshot = die
    elif where == "after-commit":
        store_swap._end_journal = die
    else:
        real, count = os.rename, [0]
        def rename(a, b):
            count[0] += 1
            if count[0] == int(where):
                die()
            real(a, b)
        original = store_swap.Swap.swap_in
        def swap_in(self, *a, **k):
            os.rename = rename
            return original(self, *a, **k)
        store_swap.Swap.swap_in = swap_in
    backup.restore_store(archive, db)
    """
)


@pytest.mark.parametrize(
    ("where", "expect"),
    [
        ("unpacking", "old"),
        ("1", "old"),
        ("2", "old"),
        ("3", "old"),
        ("4", "old"),
        ("after-commit", "new"),
    ],  # fmt: skip
)
def test_kill_9_during_restore_leaves_the_old_or_the_new_store_never_a_mix(
    store_path, other_archive, tmp_path, where, expect
):
    old_rows, old_files = _dump(store_path), _files(Path(f"{store_path}-files"))
    close_all()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(other_archive), str(store_path), where],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with get_session(store_path, readonly=True) as s:  # the next open settles it
        assert verify_file_store(s).ok
    emails = _emails(store_path)
    assert emails == (["ada@example.org"] if expect == "old" else ["bob@example.org"])
    if expect == "old":
        assert _dump(store_path) == old_rows
        assert _files(Path(f"{store_path}-files")) == old_files
    assert f".localchat-store-{_identity(store_path)}" in _files(Path(f"{store_path}-files"))
    left = [p.name for p in store_path.parent.iterdir() if "restore-" in p.name]
    assert left == [] or all(n.startswith("chat.db.pre-restore-") for n in left)
    assert not journal_path(store_path).exists()


# -- CLI and progress -----------------------------------------------------------


def test_cli_backup_and_restore_print_json(store_path, other_archive, tmp_path, capsys):
    assert main(["--db", str(store_path), "backup", str(tmp_path / "cli.zip"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["archive"] == str(tmp_path / "cli.zip") and out["files"] == 2
    assert main(["--db", str(store_path), "restore", str(other_archive), "--yes", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["kept"].startswith(str(store_path) + ".pre-restore-")
    assert captured.err == ""  # no progress when stderr is not a terminal


def test_cli_backup_quiet_prints_nothing(store_path, tmp_path, capsys):
    assert main(["--db", str(store_path), "backup", str(tmp_path), "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
    assert len(list(tmp_path.glob("localchat-backup-*.zip"))) == 1


def test_cli_restore_refuses_without_confirmation_when_not_a_terminal(
    store_path, other_archive, capsys, monkeypatch
):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    before = _state(store_path)
    assert main(["--db", str(store_path), "restore", str(other_archive)]) == 2
    assert "--yes" in capsys.readouterr().err
    assert _state(store_path) == before


def test_cli_restore_of_a_damaged_archive_is_one_error_line(store_path, tmp_path, capsys):
    (tmp_path / "junk.zip").write_bytes(b"junk")
    assert main(["--db", str(store_path), "restore", str(tmp_path / "junk.zip"), "--yes"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a zip archive" in err and err.count("\n") == 1


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_counts_and_rate_on_a_terminal_only():
    tty, pipe = _Tty(), io.StringIO()
    for stream in (tty, pipe):
        with TerminalProgress("backup", stream=stream, interval=0) as bar:
            bar(5_000_000, 10_000_000, 1, 4)
    assert "1/4 files" in tty.getvalue() and "5.0/10.0 MB" in tty.getvalue()
    assert "MB/s" in tty.getvalue() and tty.getvalue().endswith("\n")
    assert pipe.getvalue() == ""
    quiet = _Tty()
    with TerminalProgress("backup", stream=quiet, enabled=False, interval=0) as bar:
        bar(1, 2, 1, 2)
    assert quiet.getvalue() == ""
