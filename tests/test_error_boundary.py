"""One error boundary: every store failure reaches the app as a localchat error naming the file."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import peewee
import pytest

from localchat import (
    ConfigError,
    LocalchatError,
    StoreCorrupt,
    StoreError,
    get_session,
    open_store,
)
from localchat.repository import add_message, create_conversation, create_user, list_users


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True
    )


@pytest.mark.skipif(
    importlib.util.find_spec("resource") is None, reason="needs RLIMIT_FSIZE (POSIX)"
)
def test_a_full_disk_is_store_full_and_keeps_what_was_committed(tmp_path):
    path = tmp_path / "chat.db"
    proc = _run(
        f"""
        import resource, signal
        from localchat import StoreError, get_session, open_store
        from localchat.repository import (
            add_message, create_conversation, create_user, list_messages_for_conversation)
        path = {str(path)!r}
        with get_session(path) as s:
            conv = create_conversation(s, user_id=create_user(s, email="a@example.org").id)
            add_message(s, conv.id, "user", "kept")
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past the limit fails: EFBIG
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, hard))
        try:
            with get_session(path) as s:
                for i in range(100):
                    add_message(s, conv.id, "user", "x" * 50_000)
        except StoreError as exc:
            print("ERROR", type(exc).__name__, exc)
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        with get_session(path, readonly=True) as s:
            print("LEFT", [m.content for m in list_messages_for_conversation(s, conv.id)])
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "ERROR Store" in proc.stdout and str(path) in proc.stdout
    assert "full" in proc.stdout.lower()
    assert "no transaction is active" not in proc.stdout
    assert "LEFT ['kept']" in proc.stdout


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True,
                    reason="root ignores file permissions")  # fmt: skip
def test_a_read_only_folder_is_a_clear_error_naming_the_file(tmp_path):
    path = tmp_path / "ro" / "chat.db"
    with get_session(path) as s:
        create_user(s, email="ada@example.org")
    open_store(path).close()
    os.chmod(path.parent, 0o500)
    os.chmod(path, 0o400)
    try:
        with pytest.raises(StoreError) as info:
            with get_session(path, readonly=True) as s:
                list_users(s)
        assert str(path) in str(info.value)
    finally:
        os.chmod(path.parent, 0o700)


def test_a_read_only_file_is_store_read_only_when_writing(tmp_path):
    path = tmp_path / "chat.db"
    with get_session(path) as s:
        create_user(s, email="ada@example.org")
    store = open_store(path)
    store.close()
    store.db.connect_params = {**store.db.connect_params, "uri": True}
    store.db.database = f"file:{path}?mode=ro"  # what a read-only file gives SQLite
    try:
        with pytest.raises(StoreError, match="read-only|cannot be written") as info:
            with store.session() as s:
                create_user(s, email="bob@example.org")
        assert str(path) in str(info.value)
    finally:
        store.close()
        store.db.database = str(path)


def test_a_damaged_database_is_store_corrupt_pointing_at_the_backup(tmp_path):
    path = tmp_path / "chat.db"
    with get_session(path) as s:
        conv = create_conversation(s, user_id=create_user(s, email="a@example.org").id)
        for i in range(300):
            add_message(s, conv.id, "user", f"message {i} " * 20)
    open_store(path).close()
    data = bytearray(path.read_bytes())
    for page in range(2, len(data) // 4096):  # scribble over every page but the first
        data[page * 4096 : page * 4096 + 100] = b"\xff" * 100
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt) as info:
        with get_session(path, readonly=True) as s:
            list(s.db.execute_sql("SELECT * FROM message"))
            add_message(s, conv.id, "user", "x")
    assert str(path) in str(info.value) and "backup" in str(info.value)


def test_a_missing_postgresql_driver_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(peewee, "psycopg2", None)
    monkeypatch.setattr(peewee, "psycopg", None, raising=False)
    store = open_store(url="postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(ConfigError, match=r"pip install 'localchat\[postgres\]'"):
        with store.session():
            pass


def test_a_parent_path_that_is_a_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    with pytest.raises(LocalchatError, match="notes.txt") as info:
        with get_session(blocker / "chat.db") as s:
            create_user(s, email="ada@example.org")
    assert "file, not a folder" in str(info.value) or "Not a directory" in str(info.value)
    assert blocker.read_text() == "mine"
