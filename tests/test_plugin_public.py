"""The pytest plugin stands on public store functions, and lets a test run commit callbacks.

``localchat.database.forget_store`` drops one store from ``open_store``'s cache;
``Store.assume_migrated`` opens a copy of a migrated store without checking it;
``localchat_capture_on_commit`` captures (and on request runs) the callbacks a
``localchat_session`` test registers, which its rollback would otherwise drop.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from localchat import database, open_store
from localchat.repository import delete_document

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["pytester"]


def test_forget_store_drops_only_that_store_from_the_cache(tmp_path):
    a, b = open_store(tmp_path / "a.db"), open_store(tmp_path / "b.db")
    database.forget_store(a)
    assert open_store(tmp_path / "a.db") is not a
    assert open_store(str(tmp_path / "a.db")) is open_store(tmp_path / "a.db")
    assert open_store(tmp_path / "b.db") is b
    database.forget_store(a)  # forgetting twice is harmless


def test_a_store_assumed_migrated_is_not_migrated_by_a_session(tmp_path):
    path = tmp_path / "old.db"
    old = open_store(path)
    old.upgrade("0001_initial")
    database.forget_store(old)
    old.close()
    store = open_store(path)
    store.assume_migrated()
    with store.session() as s:
        s.db.execute_sql("SELECT count(*) FROM user")
    assert [m.name for m in store.migration_status() if m.applied] == ["0001_initial"]


def test_the_plugin_uses_no_private_name_of_the_store_module():
    private = re.compile(r"database\._\w+|\._(migrated|prepared|readable)\b|_stores_lock|_resolved")
    for name in ("fixtures.py", "pytest_plugin.py"):
        source = (ROOT / "localchat" / name).read_text(encoding="utf-8")
        assert private.findall(source) == [], name


def test_captured_callbacks_run_when_asked(localchat_session, localchat_capture_on_commit):
    ran = []
    with localchat_capture_on_commit(execute=True) as callbacks:
        localchat_session.after_commit(lambda: ran.append("first"))
        localchat_session.after_commit(lambda: ran.append("second"))
        assert ran == []  # not before the block ends
    assert ran == ["first", "second"] and len(callbacks) == 2


def test_captured_callbacks_are_only_recorded_by_default(
    localchat_session, localchat_capture_on_commit
):
    ran = []
    before = localchat_session.after_commit(lambda: ran.append("before"))
    with localchat_capture_on_commit() as callbacks:
        localchat_session.after_commit(lambda: ran.append("inside"))
    assert before is None and ran == [] and len(callbacks) == 1
    callbacks[0]()
    assert ran == ["inside"]


def test_a_callback_registered_by_a_captured_one_runs_too(
    localchat_session, localchat_capture_on_commit
):
    ran = []

    def outer():
        ran.append("outer")
        localchat_session.after_commit(lambda: ran.append("inner"))

    with localchat_capture_on_commit(execute=True) as callbacks:
        localchat_session.after_commit(outer)
    assert ran == ["outer", "inner"] and len(callbacks) == 2


def test_a_deleted_documents_file_goes_when_the_captured_callbacks_run(
    localchat_session, localchat_capture_on_commit, make_document
):
    doc = make_document(content=b"bytes")
    path = Path(doc.path)
    with localchat_capture_on_commit(execute=True):
        assert delete_document(localchat_session, doc.id, delete_file=True)
        assert path.exists()
    assert not path.exists()


def test_the_plugin_documents_the_capture_fixture(pytester: pytest.Pytester):
    result = pytester.runpytest("--fixtures")
    result.stdout.fnmatch_lines(["localchat_capture_on_commit*"])
