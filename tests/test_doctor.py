"""The doctor reports each kind of damage, repairs what is safe and never deletes a row."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from localchat import local_session, open_store, reset_db
from localchat.cli import main
from localchat.maintenance import check_store
from localchat.repository import add_message, create_conversation, create_user
from localchat.repository import documents as document_ops
from localchat.search import search_messages


@pytest.fixture
def store_path(db_path: Path, src: Path) -> Path:
    with local_session(db_path) as s:
        user = create_user(s, "ada@example.org")
        conv = create_conversation(s, user.id, "Engines")
        add_message(s, conv.id, "user", "the analytical engine weaves algebraic patterns")
        add_message(s, conv.id, "assistant", "as the jacquard loom weaves flowers")
        document_ops.create_document_with_file(s, src, user_id=user.id)
    return db_path


def files_dir(db: Path) -> Path:
    return db.parent / "chat.db-files"


def stored_file(db: Path) -> Path:
    (name,) = [n for n in os.listdir(files_dir(db)) if not n.startswith(".")]
    return files_dir(db) / name


def raw(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(db), isolation_level=None)


def doctor(db: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main(["--db", str(db), "doctor", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def problems(report: dict, check: str) -> list[dict]:
    return [f for f in report["findings"] if f["check"] == check and f["level"] == "problem"]


def counts(db: Path) -> dict[str, int]:
    return open_store(db).table_counts()


def test_a_healthy_store_exits_0_and_reports_every_check(store_path, capsys):
    code, report = doctor(store_path, capsys=capsys)
    assert code == 0, report
    checks = {f["check"] for f in report["findings"]}
    assert {"schema", "integrity", "foreign_keys", "fts", "files", "wal", "free_pages",
            "permissions"} <= checks  # fmt: skip
    assert main(["--db", str(store_path), "doctor"]) == 0
    assert "healthy." in capsys.readouterr().out


def test_no_store_means_the_doctor_could_not_run(tmp_path, capsys):
    assert main(["--db", str(tmp_path / "none.db"), "doctor"]) == 2
    assert not (tmp_path / "none.db").exists()


def test_a_deleted_file_is_reported_and_not_fixable(store_path, capsys):
    stored_file(store_path).unlink()
    code, report = doctor(store_path, "--repair", capsys=capsys)
    assert code == 1
    (missing,) = problems(report, "files")
    assert missing["data"]["kind"] == "missing"
    assert counts(store_path)["document"] == 1


def test_an_orphan_file_is_reported_and_repair_removes_it(store_path, capsys):
    orphan = files_dir(store_path) / ("ab" * 16 + ".txt")
    orphan.write_bytes(b"left behind")
    code, report = doctor(store_path, capsys=capsys)
    assert code == 1 and problems(report, "files")[0]["data"]["kind"] == "orphan"
    assert orphan.exists()  # checking changes nothing
    code, report = doctor(store_path, "--repair", capsys=capsys)
    assert code == 0, report
    assert not orphan.exists()
    assert any("orphan" in line for line in report["repairs"])
    assert stored_file(store_path).exists()


def test_a_foreign_file_in_the_folder_is_a_warning_and_stays(store_path, capsys):
    foreign = files_dir(store_path) / "my notes.txt"
    foreign.write_bytes(b"mine")
    code, report = doctor(store_path, "--repair", capsys=capsys)
    assert code == 0
    assert foreign.read_bytes() == b"mine"
    assert any(f["level"] == "warning" and f["check"] == "files" for f in report["findings"])


def test_a_corrupted_search_index_is_reported_and_repair_rebuilds_it(store_path, capsys):
    conn = raw(store_path)
    conn.execute("INSERT INTO message_fts(message_fts, rowid, content) VALUES ('delete', 1, 'zzz')")
    conn.close()
    code, report = doctor(store_path, capsys=capsys)
    assert code == 1
    (bad,) = problems(report, "fts")
    assert bad["data"]["index"] == "message_fts" and bad["fixable"]
    code, report = doctor(store_path, "--repair", capsys=capsys)
    assert code == 0, report
    with local_session(store_path) as s:
        assert [h.message.id for h in search_messages(s, "algebraic")] == [1]


def test_the_full_check_runs_fts5_integrity_check(store_path, capsys):
    conn = raw(store_path)
    conn.execute("DELETE FROM message_fts_data WHERE id > 10")
    conn.close()
    code, report = doctor(store_path, "--full", capsys=capsys)
    assert code == 1
    assert problems(report, "fts")
    code, report = doctor(store_path, "--full", "--repair", capsys=capsys)
    assert code == 0, report


def test_a_foreign_key_violation_is_reported_and_the_row_kept(store_path, capsys):
    conn = raw(store_path)
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("UPDATE message SET conversation_id = 999 WHERE id = 2")
    conn.close()
    before = counts(store_path)
    code, report = doctor(store_path, "--repair", capsys=capsys)
    assert code == 1
    (bad,) = problems(report, "foreign_keys")
    assert bad["data"]["table"] == "message" and bad["data"]["parent"] == "conversation"
    assert counts(store_path) == before


def test_a_truncated_database_is_reported_and_left_untouched(store_path, capsys):
    conn = raw(store_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = store_path.stat().st_size
    os.truncate(store_path, size // 2)
    damaged = store_path.read_bytes()
    code = main(["--db", str(store_path), "doctor", "--repair"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "problem" in out
    assert store_path.read_bytes() == damaged


def test_pending_migrations_are_a_problem(store_path, capsys):
    open_store(store_path).downgrade()
    code, report = doctor(store_path, capsys=capsys)
    assert code == 1
    assert problems(report, "schema")[0]["data"]["pending"]


def test_check_store_reads_only(store_path):
    before = store_path.stat().st_mtime_ns
    report = check_store(open_store(store_path))
    assert report.ok and report.repairs == []
    assert store_path.stat().st_mtime_ns == before


def test_doctor_on_postgresql_checks_schema_and_files(pg_url):
    reset_db(url=pg_url)
    report = check_store(open_store(url=pg_url), repair=True)
    assert report.exit_code == 0, report.problems
    assert {f.check for f in report.findings} >= {"schema", "files"}
