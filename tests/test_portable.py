"""The localchat export format: a whole store out and back in, idempotent, all or nothing."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from pathlib import Path

import pytest

from localchat import ValidationError, open_store
from localchat.cli import main
from localchat.factories import Factories
from localchat.models import ALL_MODELS, Conversation, Document, Message, WebSession
from localchat.portable import ExportFilter, export_store, import_path
from localchat.portable.jsonl import MAX_LINE_BYTES
from localchat.portable.markdown import conversation_markdown
from localchat.portable.records import FORMAT_VERSION, TABLES
from localchat.repository import (
    archive_conversation,
    create_web_session,
    log_generation,
    record_response,
    switch_branch,
)
from localchat.schema import MIGRATIONS_DIR
from localchat.search import search_messages

# -- helpers -------------------------------------------------------------------


def _store(path: Path):
    store = open_store(path)
    store.upgrade()
    return store


def _fill(store) -> None:
    """Every table non-empty: branches, unicode, documents with and without bytes."""
    with store.session() as s:
        make = Factories(s)
        ada = make.user(password="correct horse", full_name="Ada Lovelace 🧮")
        conv = make.conversation(user=ada, title="Grüße — 你好 👋", default_model="llama3")
        q = make.message(conversation=conv, content="Hello 𝔸𝔹ℂ\u202eRTL")
        a1 = make.message(conversation=conv, role="assistant", content="Hi!", model="llama3",
                          role_metadata={"nested": {"k": [1, 2.5, None, "é"]}})  # fmt: skip
        make.message(conversation=conv, role="assistant", content="Hello again", parent_id=q.id)
        make.message(conversation=conv, content="and then?", parent_id=a1.id)
        record_response(s, a1.id, "llama3", 12, 3, completion_time_ms=250,
                        options={"temperature": 0.2}, usage_details={"cached": 4})  # fmt: skip
        old = make.conversation(user=ada, title="old one")
        make.message(conversation=old, content="archived text")
        archive_conversation(s, old.id)
        anonymous = make.conversation(user=None, title=None)
        make.message(conversation=anonymous, role="system", content="")
        make.document(content=b"\x00\x01binary\xff" * 1000, filename="blob.bin", user=ada,
                      conversation=conv, message_id=q.id, tags=["a", "ü"])  # fmt: skip
        make.document(content="same bytes", filename="one.txt", user=ada, conversation=conv)
        make.document(content="same bytes", filename="two.txt", user=ada, conversation=conv)
        make.document(content=None, filename="only-metadata.pdf")
        make.prompt(content={"text": "Hi {name} ✨"})
        make.model(supports_tools=True)
        make.knowledge_chunk(chunk_metadata={"page": 3})
        log_generation(s, "user_123", "summary", {"in": 1}, {"out": "ü"}, tokens_used=7)
        create_web_session(s, "token-abc", ada.id)


def _snapshot(store) -> dict[str, list[dict]]:
    """Every exported table as comparable rows: uuids instead of ids, file bytes inlined."""
    out: dict[str, list[dict]] = {}
    with store.read_session():
        for spec in TABLES:
            rows = []
            for row in spec.model.select().order_by(spec.model.id):
                data = {}
                for field in spec.fields:
                    value = getattr(row, field.name if field.name not in spec.foreign else
                                    field.name + "_id")  # fmt: skip
                    if field.name in spec.foreign and value is not None:
                        target = spec.foreign[field.name]
                        value = target.get_by_id(value).uuid
                    data[field.name] = value
                if spec.kind == "document":
                    where = row.path
                    data["bytes"] = Path(where).read_bytes() if row.stored_name else None
                    del data["stored_name"], data["recorded_path"]
                rows.append(data)
            out[spec.kind] = sorted(rows, key=lambda r: str(r.get("uuid") or r.get("message")))
    return out


def _export(store, path: Path, flt: ExportFilter | None = None, **kwargs) -> dict[str, int]:
    with store.read_session() as s, open(path, "w", encoding="utf-8") as fp:
        return export_store(s, fp, flt, **kwargs)


def _import(store, path: Path, **kwargs):
    with store.session() as s:
        return import_path(s, path, **kwargs)


@pytest.fixture
def filled(tmp_path):
    store = _store(tmp_path / "source.db")
    _fill(store)
    return store


@pytest.fixture
def exported(filled, tmp_path):
    path = tmp_path / "export.jsonl"
    _export(filled, path, include_secrets=True)  # equal tables: password hashes too
    return path


# -- the format ------------------------------------------------------------------


def test_the_first_line_is_a_header_with_versions_app_and_counts(filled, exported):
    lines = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    header = lines[0]
    assert header["type"] == "header" and header["format"] == "localchat-export"
    assert header["format_version"] == FORMAT_VERSION and header["app"] == "localchat"
    assert header["schema_version"] == sorted(p.stem for p in MIGRATIONS_DIR.glob("0*.py"))[-1]
    kinds = [line["type"] for line in lines[1:] if line["type"] != "file"]
    assert header["counts"] == {spec.kind: kinds.count(spec.kind) for spec in TABLES}
    assert all(n > 0 for n in header["counts"].values())


def test_password_hashes_stay_out_unless_asked(filled, tmp_path):
    plain, secret = tmp_path / "plain.jsonl", tmp_path / "secret.jsonl"
    _export(filled, plain)
    _export(filled, secret, include_secrets=True)
    assert "password_hash" not in plain.read_text() and "token_hash" not in plain.read_text()
    users = [json.loads(x) for x in secret.read_text().splitlines() if '"type": "user"' in x]
    assert users[0]["password_hash"].startswith("pbkdf2") or users[0]["password_hash"]


def test_the_json_format_holds_the_same_records_as_one_document(filled, exported, tmp_path):
    path = tmp_path / "export.json"
    with filled.read_session() as s, open(path, "w", encoding="utf-8") as fp:
        export_store(s, fp, as_json=True, include_secrets=True)
    document = json.loads(path.read_text(encoding="utf-8"))
    lines = [json.loads(x) for x in exported.read_text(encoding="utf-8").splitlines()]
    strip = [{k: v for k, v in r.items() if k != "created_at"} for r in [document["header"]]]
    assert strip == [{k: v for k, v in lines[0].items() if k != "created_at"}]
    assert document["records"] == lines[1:]


def test_the_json_form_imports_like_the_lines(filled, tmp_path):
    path = tmp_path / "export.json"
    with filled.read_session() as s, open(path, "w", encoding="utf-8") as fp:
        export_store(s, fp, as_json=True, include_secrets=True)
    target = _store(tmp_path / "from-json.db")
    report = _import(target, path)  # the format is detected from the first bytes
    assert report.format == "localchat"
    before, after = _snapshot(filled), _snapshot(target)
    for spec in TABLES:
        assert after[spec.kind] == before[spec.kind], spec.kind
    reformatted = tmp_path / "pretty.json"
    reformatted.write_text(json.dumps(json.loads(path.read_text()), indent=1))
    with pytest.raises(ValidationError, match="line 1: not valid JSON"):
        _import(_store(tmp_path / "pretty.db"), reformatted, format="localchat")


# -- round trip and idempotence ---------------------------------------------------


def test_a_round_trip_into_an_empty_store_gives_equal_tables(filled, exported, tmp_path):
    target = _store(tmp_path / "target.db")
    report = _import(target, exported)
    assert report.format == "localchat" and report.skipped == {}
    before, after = _snapshot(filled), _snapshot(target)
    for spec in TABLES:
        assert after[spec.kind] == before[spec.kind], spec.kind
    counts = target.table_counts()
    assert counts.pop("web_session") == 0  # login tokens never leave their machine
    expected = filled.table_counts()
    expected.pop("web_session")
    assert counts == expected


def test_the_message_tree_keeps_its_branches(filled, exported, tmp_path):
    target = _store(tmp_path / "target.db")
    _import(target, exported)
    with target.read_session() as s:
        first = Message.get(Message.content == "Hello 𝔸𝔹ℂ\u202eRTL")
        assert sorted(m.content for m in first.children) == ["Hello again", "Hi!"]
        assert search_messages(s, "archived")[0].message.content == "archived text"


def test_importing_twice_changes_nothing(filled, exported, tmp_path):
    target = _store(tmp_path / "target.db")
    _import(target, exported)
    once = _snapshot(target)
    report = _import(target, exported)
    assert report.added == {}
    assert sum(report.skipped.values()) == sum(len(rows) for rows in once.values())
    assert _snapshot(target) == once


def test_importing_into_a_store_holding_part_of_it_adds_only_what_is_missing(filled, tmp_path):
    with filled.read_session():
        conv = Conversation.get(Conversation.title == "old one")
    part, whole = tmp_path / "part.jsonl", tmp_path / "whole.jsonl"
    _export(filled, part, ExportFilter(conversation=conv.id), include_secrets=True)
    _export(filled, whole, include_secrets=True)
    target = _store(tmp_path / "target.db")
    first = _import(target, part)
    assert first.added == {"user": 1, "conversation": 1, "message": 1}
    second = _import(target, whole)
    assert second.skipped == {"user": 1, "conversation": 1, "message": 1}
    assert _snapshot(target) == _snapshot(filled)


def test_a_dry_run_reports_what_would_be_added_and_changes_nothing(filled, exported, tmp_path):
    target = _store(tmp_path / "target.db")
    empty = _snapshot(target)
    dry = _import(target, exported, dry_run=True)
    assert dry.dry_run and dry.added["message"] == 6
    assert _snapshot(target) == empty
    assert not [p for p in target.files_dir.glob("*") if not p.name.startswith(".")]
    real = _import(target, exported)
    assert real.added == dry.added


@pytest.mark.parametrize("how", ["dry run", "done", "failed"])
def test_the_message_triggers_are_back_after_an_import(filled, exported, tmp_path, how):
    target = _store(tmp_path / "target.db")
    if how == "failed":
        with pytest.raises(ValidationError):
            _import(target, _write(tmp_path / "cut.jsonl", _lines(exported)[:-1]))
    else:
        _import(target, exported, dry_run=how == "dry run")
    with target.session() as s:
        conv = Factories(s).conversation(title="after")
        Factories(s).message(conversation=conv, content="zebracorn appears")
    with target.read_session() as s:
        assert [h.message.content for h in search_messages(s, "zebracorn")] == ["zebracorn appears"]
        assert Conversation.get(Conversation.title == "after").last_message == "zebracorn appears"


# -- filters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flt", "titles"),
    [
        (ExportFilter(archived=True), ["old one"]),
        (ExportFilter(archived=False), ["Grüße — 你好 👋", None]),
        (ExportFilter(user="user-of-nobody@example.org"), []),
        (ExportFilter(until=dt.datetime(2000, 1, 1)), []),
        (ExportFilter(since=dt.datetime(2000, 1, 1), archived=True), ["old one"]),
    ],
)
def test_filters_choose_conversations_and_bring_their_rows(filled, tmp_path, flt, titles):
    path = tmp_path / "part.jsonl"
    written = _export(filled, path, flt)
    assert written.get("conversation", 0) == len(titles)
    records = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert sorted(map(str, (r["title"] for r in records if r["type"] == "conversation"))) == sorted(
        map(str, titles)
    )
    assert not {"prompt_template", "llm_service", "audit_log"} & {r["type"] for r in records}


def test_a_user_filter_takes_an_email_and_exports_only_that_users_rows(filled, tmp_path):
    with filled.read_session():
        email = Conversation.get(Conversation.title == "old one").user.email
    path = tmp_path / "ada.jsonl"
    written = _export(filled, path, ExportFilter(user=email))
    assert written["user"] == 1 and written["conversation"] == 2 and written["message"] == 5
    assert written["document"] == 3 and written["response"] == 1


def test_a_filtered_export_brings_the_owner_of_a_document_in_a_chosen_conversation(tmp_path):
    source = _store(tmp_path / "source.db")
    with source.session() as s:
        make = Factories(s)
        conv = make.conversation(title="shared")
        make.document(content="notes", user=make.user(), conversation=conv)
        conv_id = conv.id
    path = tmp_path / "one.jsonl"
    written = _export(source, path, ExportFilter(conversation=conv_id))
    assert written["user"] == 2 and written["document"] == 1
    report = _import(_store(tmp_path / "target.db"), path)
    assert report.added == {"user": 2, "conversation": 1, "document": 1}


# -- all or nothing: hostile input --------------------------------------------------


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _replace(path: Path, kind: str, **changes) -> list[str]:
    lines = _lines(path)
    for i, line in enumerate(lines):
        record = json.loads(line)
        if record["type"] == kind:
            record.update(changes)
            lines[i] = json.dumps(record)
            break
    return lines


HOSTILE = {
    "truncated JSON": (lambda p: _lines(p)[:-1] + [_lines(p)[-1][:20]], "not valid JSON"),
    "cut at a line boundary": (lambda p: _lines(p)[:-2], "the file is incomplete"),
    "no header": (lambda p: _lines(p)[1:], "no header"),
    "a newer format": (
        lambda p: [json.dumps({**json.loads(_lines(p)[0]), "format_version": 99})] + _lines(p)[1:],
        "newer than this localchat reads",
    ),
    "a role of the wrong type": (lambda p: _replace(p, "message", role=5), "role must be text"),
    "an unknown role": (lambda p: _replace(p, "message", role="wizard"), "one of user"),
    "a bad uuid": (lambda p: _replace(p, "message", uuid="nope"), "uuid must be a uuid"),
    "a bad time": (lambda p: _replace(p, "user", created_at="yesterday"), "ISO 8601"),
    "a bool as tokens": (lambda p: _replace(p, "response", tokens_prompt=True), "an integer"),
    "an unknown column": (lambda p: _replace(p, "llm_model", colour="red"), "no column"),
    "a missing parent": (
        lambda p: _replace(p, "message", parent="00000000-0000-4000-8000-000000000000"),
        "in neither the import nor the store",
    ),
    "an unknown type": (
        lambda p: _lines(p) + [json.dumps({"type": "spaceship"})],
        "unknown record type",
    ),
    "a current leaf that is no message": (
        lambda p: _replace(p, "conversation", current_leaf="00000000-0000-4000-8000-000000000000"),
        "current_leaf .* is not a message",
    ),
    "a current leaf that is not a uuid": (
        lambda p: _replace(p, "conversation", current_leaf=7),
        "current_leaf must be a message uuid",
    ),
    "a lone surrogate": (lambda p: _replace(p, "message", content="\ud800"), "valid Unicode"),
    "a file whose bytes lie": (
        lambda p: _replace(p, "file", data=base64.b64encode(b"x" * 8).decode()),
        "file",
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_bad_file_is_refused_with_its_line_and_the_store_is_unchanged(
    filled, exported, tmp_path, case
):
    make, expected = HOSTILE[case]
    bad = _write(tmp_path / "bad.jsonl", make(exported))
    target = _store(tmp_path / "target.db")
    with target.session() as s:
        Factories(s).conversation(title="already here")
    before = _snapshot(target)
    with pytest.raises(ValidationError, match=expected) as info:
        _import(target, bad)
    assert str(bad) in str(info.value)
    assert _snapshot(target) == before
    assert not [p for p in target.files_dir.glob("*") if not p.name.startswith(".")]


def test_a_huge_line_is_refused_before_it_is_parsed(filled, exported, tmp_path):
    bad = tmp_path / "huge.jsonl"
    with open(bad, "w", encoding="utf-8") as fp:
        fp.write(_lines(exported)[0] + "\n")
        fp.write('{"type": "message", "content": "' + "x" * (MAX_LINE_BYTES + 10) + '"}\n')
    target = _store(tmp_path / "target.db")
    with pytest.raises(ValidationError, match="line 2: longer than"):
        _import(target, bad)


def test_two_records_with_one_unique_key_are_one_row(filled, tmp_path):
    path = tmp_path / "x.jsonl"
    _export(filled, path)
    lines = _lines(path)
    prompts = [i for i, x in enumerate(lines) if '"type": "prompt_template"' in x]
    record = json.loads(lines[prompts[0]])
    clone = {**record, "uuid": "11111111-1111-4111-8111-111111111111"}
    lines.insert(prompts[0] + 1, json.dumps(clone))
    header = json.loads(lines[0])
    header["counts"]["prompt_template"] += 1
    lines[0] = json.dumps(header)
    target = _store(tmp_path / "target.db")
    report = _import(target, _write(tmp_path / "dup.jsonl", lines), format="localchat")
    assert report.added["prompt_template"] == 1 and report.skipped == {"prompt_template": 1}


def test_an_unknown_format_name_is_refused(tmp_path, exported):
    target = _store(tmp_path / "target.db")
    with pytest.raises(ValidationError, match="is not one of"):
        _import(target, exported, format="csv")


# -- the command line ------------------------------------------------------------------


def test_cli_export_and_import_round_trip_with_json_reports(filled, tmp_path, capsys):
    out = tmp_path / "cli.jsonl"
    assert main(["--db", str(filled.path), "export", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["records"]["message"] == 6 and out.stat().st_mode & 0o777 == 0o600
    target = tmp_path / "cli-target.db"
    assert main(["--db", str(target), "import", str(out), "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] and dry["added"]["message"] == 6
    assert main(["--db", str(target), "import", str(out)]) == 0
    said = capsys.readouterr().out
    assert "(localchat): added" in said and "6 message" in said
    assert main(["--db", str(target), "import", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == ""


def test_cli_import_of_a_bad_file_prints_one_error_line_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "header"\n')
    assert main(["--db", str(tmp_path / "t.db"), "import", str(bad), "--format", "localchat"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "line 1" in err and err.count("\n") == 1


def test_cli_markdown_export_writes_one_file_per_conversation(filled, tmp_path, capsys):
    folder = tmp_path / "md"
    assert (
        main(["--db", str(filled.path), "export", "--format", "markdown", "--out", str(folder)])
        == 0
    )
    files = sorted(folder.iterdir())
    assert len(files) == 3 and all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    text = next(f for f in files if "Gr" in f.name).read_text(encoding="utf-8")
    # the current branch: the newest message and its ancestors, not the sibling reply
    assert "and then?" in text and "Hi!" in text and "Hello again" not in text


def test_a_markdown_export_shows_the_branch_the_user_switched_to(filled, tmp_path):
    with filled.session() as s:
        again = Message.get(Message.content == "Hello again")
        switch_branch(s, again.id)
    with filled.read_session() as s:
        conv = Conversation.get(Conversation.id == again.conversation_id)
        text = conversation_markdown(s, conv)
    assert "Hello again" in text and "Hi!" not in text and "and then?" not in text


def test_export_runs_in_a_read_session_and_never_creates_a_store(tmp_path, capsys):
    db = tmp_path / "none" / "x.db"
    assert main(["--db", str(db), "export"]) == 0
    assert not db.exists()


def test_export_progress_is_silent_when_stderr_is_not_a_terminal(filled, tmp_path, capsys):
    assert main(["--db", str(filled.path), "export", "--out", str(tmp_path / "p.jsonl")]) == 0
    err = capsys.readouterr()
    assert "\r" not in err.err and "\r" not in err.out


def test_progress_counts_when_the_stream_is_a_terminal():
    from localchat.progress import TerminalProgress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    with TerminalProgress("read", stream=stream, unit="records", interval=0) as tick:
        tick(1000)
    assert "\rread 1,000 records" in stream.getvalue() and stream.getvalue().endswith("\n")
    quiet = Tty()
    with TerminalProgress("read", stream=quiet, unit="records", enabled=False) as tick:
        tick(1000)
    assert quiet.getvalue() == ""


# -- PostgreSQL ----------------------------------------------------------------------


def test_a_round_trip_through_postgresql_keeps_every_row(pg_session, filled, exported, tmp_path):
    files = tmp_path / "pg-files"
    report = import_path(pg_session, exported, storage_dir=files)
    assert report.added["message"] == 6 and report.added["document"] == 4
    again = import_path(pg_session, exported, storage_dir=files)
    assert again.added == {}
    with pytest.raises(ValidationError):
        import_path(
            pg_session, _write(tmp_path / "bad.jsonl", _lines(exported)[:-2]), storage_dir=files
        )
    assert Message.select().count() == 6
    out = io.StringIO()
    written = export_store(pg_session, out, include_secrets=True)
    assert written["message"] == 6 and written["document"] == 4 and written["file"] == 2
    header = json.loads(out.getvalue().splitlines()[0])
    assert header["schema_version"] == sorted(p.stem for p in MIGRATIONS_DIR.glob("0*.py"))[-1]


def test_every_table_but_web_sessions_has_a_record_type():
    exported_models = {spec.model for spec in TABLES}
    assert set(ALL_MODELS) - exported_models == {WebSession}
    assert Document in exported_models
