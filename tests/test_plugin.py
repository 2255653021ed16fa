"""The pytest plugin, tested the way an embedding app uses it: through ``pytester``."""

from __future__ import annotations

import importlib.metadata
import os
import re
import sqlite3
from pathlib import Path

import pytest

from localchat import get_session, open_store, schema
from localchat.models import User
from localchat.pytest_plugin import PLATFORM_DIR_VARS
from localchat.repository import authenticate, render_prompt

pytest_plugins = ["pytester"]

# An embedding app's test module: nothing configured, only the fixtures used.
APP_TESTS = """
from localchat.models import User

def test_users_start_empty(localchat_session):
    assert User.select().count() == 0

def test_first_of_two_writes_a_user(localchat_session):
    User.create(email="ada@example.org")
    assert User.select().count() == 1

def test_second_of_two_does_not_see_it(localchat_session):
    User.create(email="ada@example.org")  # the same e-mail: no Conflict
    assert User.select().count() == 1

def test_store_has_its_files_folder(localchat_store):
    assert localchat_store.files_dir == localchat_store.path.with_name(
        localchat_store.path.name + "-files"
    )

def test_factories_fill_in_what_the_test_does_not_care_about(make_message, make_document):
    reply = make_message(role="assistant", content="Hello!")
    doc = make_document(conversation=reply.conversation, filename="notes.txt")
    assert doc.conversation_id == reply.conversation_id
    assert reply.conversation.user.email.endswith("@example.org")
"""


DOCS = Path(__file__).resolve().parent.parent / "docs" / "testing.md"


def _documented_files() -> dict[str, str]:
    """docs/testing.md's Python blocks, by the file name on their first line."""
    blocks = re.findall(r"```python\n# (\S+\.py)\n(.*?)```", DOCS.read_text(), flags=re.S)
    return dict(blocks)


@pytest.fixture
def real_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for the developer's home, with a real data directory in it."""
    home = tmp_path / "real-home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "xdg-data"))
    return home


def test_plugin_is_registered_through_the_pytest11_entry_point():
    entry_points = importlib.metadata.entry_points(group="pytest11")
    assert {ep.name: ep.value for ep in entry_points}["localchat"] == "localchat.pytest_plugin"


def test_app_test_file_passes_with_nothing_configured(pytester: pytest.Pytester):
    pytester.makepyfile(test_app=APP_TESTS)
    result = pytester.runpytest_subprocess("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["localchat: platform data directory for this run: *"])


def test_the_documented_example_runs_as_written(pytester: pytest.Pytester):
    files = _documented_files()
    assert {"mychat.py", "conftest.py", "test_mychat.py"} <= set(files)
    for name, code in files.items():
        pytester.path.joinpath(name).write_text(code)
    tests = sum(code.count("\ndef test_") + code.startswith("def test_") for code in files.values())
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=tests)


def test_tests_are_isolated_from_each_other_under_xdist(pytester: pytest.Pytester):
    pytest.importorskip("xdist", reason="pytest-xdist is in the test extra")
    pytester.makepyfile(
        test_app="""
        import pytest
        from localchat.models import User

        @pytest.mark.parametrize("n", range(8))
        def test_each_store_is_private(localchat_session, n):
            User.create(email="same@example.org")  # a Conflict if any store were shared
            assert User.select().count() == 1
        """
    )
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=8)


def test_session_is_rolled_back_after_the_test(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_app="""
        from localchat import local_session
        from localchat.models import User

        seen = []

        def test_writes(localchat_session, localchat_db_path):
            User.create(email="ada@example.org")
            seen.append(localchat_db_path)

        def test_the_first_file_holds_nothing_afterwards():
            with local_session(seen[0]):
                assert User.select().count() == 0
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_a_failed_tests_store_is_kept_and_a_passed_tests_is_removed(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_app="""
        def test_passes(localchat_db_path):
            print("STORE", localchat_db_path)

        def test_fails(localchat_db_path):
            print("STORE", localchat_db_path)
            assert False
        """
    )
    result = pytester.runpytest("-s", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    passed, failed = (Path(line.split("STORE ")[1]) for line in result.outlines if "STORE " in line)
    assert not passed.parent.exists()
    assert failed.is_file()


def test_finished_tests_stores_leave_the_open_store_cache(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_app="""
        import pytest
        from localchat import database

        @pytest.mark.parametrize("n", range(3))
        def test_uses_a_store(localchat_session, n):
            pass

        def test_none_of_them_is_cached_any_more():
            caches = [*database._stores.values(), *getattr(database, "_resolved", {}).values()]
            assert not [c for c in caches if "localchat-stores" in repr(c)]
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=4)


def test_a_test_that_forgets_the_fixture_lands_in_the_run_data_dir(
    pytester: pytest.Pytester, real_home: Path
):
    pytester.makepyfile(
        test_app="""
        import os
        from pathlib import Path
        from localchat import get_session, init_db, open_store
        from localchat.models import User

        def test_forgetful():
            init_db(app_name="forgetful-app")
            with get_session(app_name="forgetful-app"):
                User.create(email="ada@example.org")
            path = open_store(app_name="forgetful-app").path
            assert path.is_relative_to(Path(os.environ["XDG_DATA_HOME"]))
            print("STORE", path)
        """
    )
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*STORE */localchat-pytest-*/data/forgetful-app/localchat.db"])
    assert not (real_home / "xdg-data" / "forgetful-app").exists()
    assert not (real_home / ".local").exists()


XDG_REAL = "Path(os.environ['REAL']) / 'xdg-data' / 'my-app' / 'localchat.db'"
DEFAULT_REAL = "Path(os.environ['REAL']) / '.local' / 'share' / 'my-app' / 'localchat.db'"


@pytest.mark.parametrize(
    ("where", "workers"),
    [(XDG_REAL, 0), (DEFAULT_REAL, 0), (XDG_REAL, 1)],
    ids=["xdg-data-home", "platform-default", "xdg-data-home-in-an-xdist-worker"],
)
def test_opening_a_store_in_the_real_data_dir_fails_with_the_fix(
    pytester: pytest.Pytester,
    real_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    workers: int,
):
    if workers:
        pytest.importorskip("xdist", reason="pytest-xdist is in the test extra")
    monkeypatch.setenv("REAL", str(real_home))
    pytester.makepyfile(
        test_app=f"""
        import os
        from pathlib import Path
        from localchat import init_db

        def test_reaches_real_data():
            try:  # not even a broad except keeps the test alive
                init_db({where})
            except Exception:
                pass
        """
    )
    result = pytester.runpytest_subprocess(*(["-n", str(workers)] if workers else []))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*this test opened a store in the real user data directory*localchat_session*"]
    )
    assert not (real_home / "xdg-data").exists()
    assert not (real_home / ".local").exists()


def test_configuration_variables_from_the_shell_are_removed_unless_kept(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("LOCALCHAT_DB_PATH", str(tmp_path / "mine.db"))
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@localhost/app_test")
    pytester.makeini("[pytest]\nlocalchat_keep_env = DATABASE_URL\n")
    pytester.makepyfile(
        test_app="""
        import os

        def test_environment():
            assert "LOCALCHAT_DB_PATH" not in os.environ
            assert os.environ["DATABASE_URL"] == "postgresql://app@localhost/app_test"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    assert os.environ["LOCALCHAT_DB_PATH"] == str(tmp_path / "mine.db")


def test_run_isolation_keeps_xdg_data_home_honoured(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_app="""
        import platformdirs
        from localchat.config import resolve

        def test_xdg(monkeypatch, tmp_path):
            monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
            assert platformdirs.user_data_dir("x", appauthor=False) == str(tmp_path / "x")
            assert resolve(app_name="x").path == tmp_path / "x" / "localchat.db"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_an_in_process_run_restores_the_environment_afterwards(pytester: pytest.Pytester):
    before = {name: os.environ.get(name) for name in PLATFORM_DIR_VARS}
    pytester.makepyfile(test_app=APP_TESTS)
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=5)
    assert {name: os.environ.get(name) for name in PLATFORM_DIR_VARS} == before


def test_app_name_and_seed_are_overridden_in_a_conftest(pytester: pytest.Pytester):
    pytester.makeconftest(
        """
        import pytest
        from localchat.factories import Factories

        @pytest.fixture(scope="session")
        def localchat_app_name():
            return "notes-app"

        @pytest.fixture(scope="session")
        def localchat_seed():
            def seed(s):
                Factories(s).user(email="admin@example.org")
            return seed
        """
    )
    pytester.makepyfile(
        test_app="""
        from localchat.models import User

        def test_store_is_the_apps(localchat_store):
            assert localchat_store.config.app_name == "notes-app"

        def test_seeded_rows_are_there_and_can_be_changed(localchat_session):
            assert [u.email for u in User.select()] == ["admin@example.org"]
            User.delete().execute()

        def test_seeded_rows_are_back_in_the_next_test(localchat_session, make_user):
            make_user()  # factory defaults never clash with seeded rows
            assert User.select().count() == 2
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


def test_fixtures_run_no_migration_check_per_test(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
):
    request.getfixturevalue("_localchat_template")  # built once per run, before this test

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a migration check ran for a fixture store")

    monkeypatch.setattr(schema, "status", refuse)
    monkeypatch.setattr(schema, "upgrade", refuse)
    s = request.getfixturevalue("localchat_session")
    User.create(email="ada@example.org")
    path = request.getfixturevalue("localchat_db_path")
    with get_session(path):  # the app opening the same file: shares the store
        assert User.select().count() == 1
    assert s.store is request.getfixturevalue("localchat_store")


def test_db_path_is_a_migrated_private_file(localchat_db_path: Path):
    assert oct(localchat_db_path.stat().st_mode & 0o777) == "0o600"
    conn = sqlite3.connect(localchat_db_path)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        applied = conn.execute(f"SELECT count(*) FROM {schema.HISTORY_TABLE}").fetchone()[0]
    finally:
        conn.close()
    assert {"user", "conversation", "message", "document"} <= tables
    assert applied == len(schema.status(open_store(localchat_db_path)))


def test_raw_sql_on_localchat_db_runs_inside_the_session(localchat_db, make_user):
    make_user()
    assert localchat_db.execute_sql('SELECT count(*) FROM "user"').fetchone() == (1,)
    assert localchat_db.in_transaction()


def test_default_store_is_what_app_code_and_subprocesses_open(
    pytester: pytest.Pytester,
):
    pytester.makepyfile(
        test_app="""
        import subprocess, sys
        from localchat import get_session
        from localchat.models import User

        def test_app_code_joins_the_test_transaction(localchat_session, localchat_default_store):
            User.create(email="ada@example.org")
            with get_session(app_name="any-app") as s:  # app code: no path given
                assert s.store is localchat_default_store
                assert User.select().count() == 1

        CODE = "from localchat.config import resolve; print(resolve().path)"

        def test_subprocess_resolves_the_test_store(localchat_default_store):
            out = subprocess.run(
                [sys.executable, "-c", CODE],
                capture_output=True, text=True, check=True,
            ).stdout.strip()
            assert out == str(localchat_default_store.path)
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


# -- factories -----------------------------------------------------------------

FACTORIES = [
    "make_user",
    "make_conversation",
    "make_message",
    "make_document",
    "make_prompt",
    "make_service",
    "make_model",
    "make_knowledge_chunk",
]


@pytest.mark.parametrize("factory", FACTORIES)
def test_factory_defaults_make_distinct_stored_rows(request: pytest.FixtureRequest, factory: str):
    make = request.getfixturevalue(factory)
    first, second = make(), make()
    assert first.id != second.id
    assert type(first).get_by_id(first.id).uuid == first.uuid


def test_make_user_overrides_fields_and_sets_a_usable_password(localchat_session, make_user):
    user = make_user(email="ada@example.org", name="Ada", password="correct horse")
    assert (user.email, user.name) == ("ada@example.org", "Ada")
    assert authenticate(localchat_session, "ada@example.org", "correct horse").id == user.id


def test_make_conversation_owner_is_new_given_or_none(make_user, make_conversation):
    ada = make_user()
    assert make_conversation(user=ada).user_id == ada.id
    assert make_conversation(user=None).user_id is None
    owners = {make_conversation().user_id for _ in range(2)}
    assert len(owners) == 2 and ada.id not in owners


def test_make_message_builds_a_thread_and_branches_on_parent(
    localchat_session, make_conversation, make_message
):
    conv = make_conversation()
    question = make_message(conversation=conv, content="Why?")
    answer = make_message(conversation=conv, role="assistant", content="Because.")
    retry = make_message(conversation=conv, role="assistant", content="Since.", parent_id=question)
    assert answer.parent_id == retry.parent_id == question.id
    assert question.role == "user" and question.parent_id is None
    assert make_message().conversation_id != conv.id


def test_make_document_stores_its_bytes_in_the_store_files(
    localchat_store, make_user, make_document
):
    owner = make_user()
    doc = make_document(content=b"%PDF-1.7 plan", filename="plan.pdf", user=owner, tags=["x"])
    assert (doc.filename, doc.user_id, doc.tags, doc.size) == ("plan.pdf", owner.id, ["x"], 13)
    assert (localchat_store.files_dir / doc.stored_name).read_bytes() == b"%PDF-1.7 plan"


def test_make_document_without_content_records_metadata_only(make_document):
    doc = make_document(content=None, filename="notes.md")
    assert (doc.filename, doc.stored_name, doc.sha256) == ("notes.md", None, None)


def test_make_model_belongs_to_the_given_service(make_service, make_model):
    service = make_service(name="local", provider="ollama")
    model = make_model(service=service, name="llama3", supports_tools=True)
    assert (model.service_id, model.name, model.supports_tools) == (service.id, "llama3", True)


def test_make_prompt_content_renders(make_prompt):
    assert render_prompt(make_prompt(), name="Ada") == {"text": "Hello Ada!"}


def test_make_knowledge_chunk_is_an_upsert_on_its_external_id(make_knowledge_chunk):
    first = make_knowledge_chunk(external_id="faq-1", content="old")
    again = make_knowledge_chunk(external_id="faq-1", content="new")
    assert again.id == first.id and again.content == "new"
