"""Streaming JSONL export: every message once, in id order, in bounded pages."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import stat

import pytest

from localchat import ValidationError, cli
from localchat.cli import main
from localchat.export import (
    EXPORT_FIELDS,
    export_messages_jsonl,
    iter_message_records,
    open_export_file,
)
from localchat.repository import add_message, create_conversation


@pytest.fixture
def chats(localchat_session):
    s = localchat_session
    a = create_conversation(s, title="a")
    b = create_conversation(s, title="b")
    q = add_message(s, a.id, "user", "Grüße 👋")
    r = add_message(s, a.id, "assistant", "hi", {"tokens": 3}, model="llama3")
    other = add_message(s, b.id, "user", "other")
    return a, b, [q, r, other]


def _lines(s, **kwargs):
    out = io.StringIO()
    n = export_messages_jsonl(s, out, **kwargs)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert n == len(lines)
    return lines


def test_every_message_is_one_json_line_with_public_ids(localchat_session, chats):
    a, b, (q, r, other) = chats
    lines = _lines(localchat_session)
    assert [tuple(line) for line in lines] == [EXPORT_FIELDS] * 3
    assert [line["uuid"] for line in lines] == [str(m.uuid) for m in (q, r, other)]
    assert [line["conversation"] for line in lines] == [str(a.uuid), str(a.uuid), str(b.uuid)]
    assert [line["parent"] for line in lines] == [None, str(q.uuid), None]
    assert lines[0]["content"] == "Grüße 👋"
    assert (lines[1]["metadata"], lines[1]["model"]) == ({"tokens": 3}, "llama3")
    stamp = dt.datetime.fromisoformat(lines[1]["created_at"])
    assert stamp == r.created_at and stamp.utcoffset() == dt.timedelta(0)


def test_one_conversation_can_be_exported_alone(localchat_session, chats):
    a, _, _ = chats
    lines = _lines(localchat_session, conversation_id=a.id)
    assert {line["conversation"] for line in lines} == {str(a.uuid)}
    assert len(lines) == 2


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5000])
def test_pages_of_any_size_yield_each_message_once_in_order(localchat_session, batch_size):
    s = localchat_session
    conv = create_conversation(s)
    made = [add_message(s, conv.id, "user", str(i)) for i in range(7)]
    got = list(iter_message_records(s, batch_size=batch_size))
    assert [r["uuid"] for r in got] == [str(m.uuid) for m in made]


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, None, True, 2**63])
def test_a_batch_size_that_is_not_a_positive_integer_is_refused(
    localchat_session, chats, batch_size
):
    s = localchat_session
    with pytest.raises(ValidationError, match="batch_size"):
        iter_message_records(s, batch_size=batch_size)  # refused by the call, not on first read
    out = io.StringIO()
    with pytest.raises(ValidationError, match="batch_size"):
        export_messages_jsonl(s, out, batch_size=batch_size)
    assert out.getvalue() == ""


def test_a_conversation_id_past_64_bits_exports_nothing(localchat_session, chats):
    assert _lines(localchat_session, conversation_id=2**63) == []


def test_an_empty_store_exports_nothing(localchat_session):
    assert _lines(localchat_session) == []


def test_cli_export_writes_the_file_and_reports_the_count(localchat_db_path, tmp_path, capsys):
    out = tmp_path / "all.jsonl"
    argv = ["--db", str(localchat_db_path), "export", "--format", "messages", "--out", str(out)]
    assert main(argv) == 0
    assert out.read_text() == ""
    assert "exported 0 message(s)" in capsys.readouterr().err


def test_cli_export_of_a_missing_store_creates_nothing(tmp_path, capsys):
    db = tmp_path / "none" / "chat.db"
    assert main(["--db", str(db), "export"]) == 0
    assert not db.exists() and not db.parent.exists()
    assert "does not exist" in capsys.readouterr().err


def test_cli_export_to_standard_output_leaves_it_open(localchat_db_path, capsys):
    from localchat import open_store

    with open_store(localchat_db_path).session() as s:
        add_message(s, create_conversation(s).id, "user", "hello")
    assert main(["--db", str(localchat_db_path), "export", "--format", "messages"]) == 0
    print("still open")
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[0])["content"] == "hello" and out[1] == "still open"


# -- the file --out writes ------------------------------------------------------


def _seeded(localchat_db_path):
    from localchat import open_store

    with open_store(localchat_db_path).session() as s:
        add_message(s, create_conversation(s).id, "user", "hello")
    return localchat_db_path


def _export(db, out):
    """``export --format messages``: the per-message stream (the full export: test_portable)."""
    return main(["--db", str(db), "export", "--format", "messages", "--out", str(out)])


def test_cli_export_writes_a_private_file_whatever_the_umask(localchat_db_path, tmp_path):
    out = tmp_path / "all.jsonl"
    old = os.umask(0o022)
    try:
        assert _export(_seeded(localchat_db_path), out) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text())["content"] == "hello"


def test_an_existing_file_is_replaced_by_a_private_one_only_once_the_export_is_complete(
    localchat_db_path, tmp_path, monkeypatch, capsys
):
    db = _seeded(localchat_db_path)
    out = tmp_path / "all.jsonl"
    out.write_text("the previous export\n")
    out.chmod(0o644)

    def half_then_fail(s, fp, **kwargs):
        fp.write('{"partial": true}\n')
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli, "export_messages_jsonl", half_then_fail)
    assert _export(db, out) == 2
    assert "No space left" in capsys.readouterr().err
    assert out.read_text() == "the previous export\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.jsonl"]  # no temporary left
    monkeypatch.undo()
    assert _export(db, out) == 0
    assert json.loads(out.read_text())["content"] == "hello"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_export_through_a_symlink_writes_the_file_it_points_to(localchat_db_path, tmp_path):
    real = tmp_path / "real.jsonl"
    real.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    assert _export(_seeded(localchat_db_path), link) == 0
    assert link.is_symlink() and json.loads(real.read_text())["content"] == "hello"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def test_export_to_a_device_writes_in_place_and_leaves_its_mode(localchat_db_path):
    before = os.stat("/dev/null")
    assert _export(_seeded(localchat_db_path), "/dev/null") == 0
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_mode == before.st_mode


@pytest.mark.parametrize("where", ["directory", "missing folder"])
def test_open_export_file_refuses_a_directory_or_a_missing_folder(tmp_path, where):
    target = tmp_path if where == "directory" else tmp_path / "missing" / "x.jsonl"
    with pytest.raises(ValidationError, match=re.escape(str(target))):
        with open_export_file(target):
            pass
    assert sorted(tmp_path.iterdir()) == []


def test_open_export_file_gives_a_text_file_that_appears_when_the_block_ends(tmp_path):
    target = tmp_path / "x.jsonl"
    with open_export_file(target) as fp:
        fp.write("Grüße\n")
        assert not target.exists()
    assert target.read_text(encoding="utf-8") == "Grüße\n"


def test_a_read_only_existing_file_is_refused_and_left_alone(localchat_db_path, tmp_path, capsys):
    out = tmp_path / "keep.jsonl"
    out.write_text("protected\n")
    out.chmod(0o444)
    assert _export(_seeded(localchat_db_path), out) == 2
    assert f"{out}: Permission denied" in capsys.readouterr().err
    assert out.read_text() == "protected\n" and stat.S_IMODE(out.stat().st_mode) == 0o444
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.jsonl"]
