"""Importing ChatGPT's "Export data": every node, every branch, hidden messages flagged."""

from __future__ import annotations

import copy
import datetime as dt
import json
import zipfile
from pathlib import Path

import pytest

from localchat import ValidationError
from localchat.models import Conversation, Document, Message
from localchat.portable import detect_format, import_path
from localchat.portable.chatgpt import message_text
from localchat.portable.markdown import conversation_markdown
from localchat.repository import get_current_leaf, list_messages_for_conversation, switch_branch

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "imports" / "chatgpt-sample"
if not SAMPLES.is_dir():  # the worktree layout: /work/<worktree>/tests -> /work/shared
    SAMPLES = Path("/work/shared/data/imports/chatgpt-sample")


def _samples() -> list[dict]:
    if not SAMPLES.is_dir():
        pytest.skip(f"the real ChatGPT samples (AGPL, never copied here) are not at {SAMPLES}")
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(SAMPLES.glob("*.raw.json"))]


def _node(key, parent, role=None, text="", t=None, children=(), **meta):
    message = None
    if role is not None:
        message = {
            "id": key,
            "author": {"role": role, "name": None, "metadata": {}},
            "create_time": t,
            "update_time": None,
            "content": {"content_type": "text", "parts": [text]},
            "status": "finished_successfully",
            "weight": 1.0,
            "metadata": meta,
            "recipient": "all",
        }
    return {"id": key, "parent": parent, "children": list(children), "message": message}


def _branched(cid="conv-branched", title="Branches", archived=False) -> dict:
    """A root, a question edited once (two user siblings), the second answered twice."""
    t = 1_700_000_000.0
    mapping = {
        "client-created-root": _node("client-created-root", None, children=["q1", "q2"]),
        "q1": _node("q1", "client-created-root", "user", "first wording", t, ["a1"]),
        "a1": _node("a1", "q1", "assistant", "answer to first", t + 1, model_slug="gpt-4o"),
        "q2": _node("q2", "client-created-root", "user", "second wording", t + 10, ["a2", "a3"]),
        "a2": _node("a2", "q2", "assistant", "answer A", t + 11, model_slug="gpt-4o"),
        "a3": _node("a3", "q2", "assistant", "answer B ✨", None, model_slug="o3"),
    }
    return {
        "id": cid,
        "title": title,
        "create_time": t,
        "update_time": t + 20,
        "mapping": mapping,
        "current_node": "a3",
        "default_model_slug": "gpt-4o",
        "is_archived": archived,
    }


def _write(tmp_path: Path, conversations, name="conversations.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(conversations, ensure_ascii=False), encoding="utf-8")
    return path


def _import(store, path, **kwargs):
    with store.session() as s:
        return import_path(s, path, **kwargs)


def _messages(store, external_id):
    with store.read_session():
        conv = Conversation.get(Conversation.external_id == external_id)
        rows = list(Message.select().where(Message.conversation == conv).order_by(Message.id))
        by_id = {m.id: m for m in rows}
        return conv, rows, by_id


# -- the real samples ------------------------------------------------------------


def test_every_node_of_the_real_samples_becomes_a_message_under_the_right_parent(
    localchat_store, tmp_path
):
    samples = _samples()
    report = _import(localchat_store, _write(tmp_path, samples))
    assert report.format == "chatgpt"
    total = sum(1 for c in samples for n in c["mapping"].values() if n["message"])
    assert report.added == {"conversation": 3, "message": total, "document": 1}
    for sample in samples:
        conv, rows, by_id = _messages(localchat_store, sample["conversation_id"])
        assert conv.title == sample["title"] and conv.default_model == sample["default_model_slug"]
        assert conv.created_at == dt.datetime.fromtimestamp(sample["create_time"], dt.timezone.utc)
        mapping = sample["mapping"]
        assert len(rows) == sum(1 for n in mapping.values() if n["message"])
        for m in rows:
            node = mapping[m.metadata["node_id"]]
            msg = node["message"]
            assert m.role == msg["author"]["role"]
            assert m.model == msg["metadata"].get("model_slug")
            assert m.content == message_text(msg["content"])
            assert m.metadata["chatgpt"] == msg["metadata"]
            if msg["create_time"] is not None:
                assert m.created_at.timestamp() == pytest.approx(msg["create_time"], abs=1e-5)
            above = node["parent"]
            while above is not None and mapping[above]["message"] is None:
                above = mapping[above]["parent"]
            parent = by_id.get(m.parent_id)
            assert (parent.metadata["node_id"] if parent else None) == above


@pytest.mark.parametrize(
    ("index", "hidden", "visible"),
    [(0, 4, (1, 1)), (1, 2, (2, 2)), (2, 2, (3, 3))],
)
def test_hidden_messages_are_kept_and_flagged_and_the_visible_chat_is_what_chatgpt_shows(
    localchat_store, tmp_path, index, hidden, visible
):
    samples = _samples()
    _import(localchat_store, _write(tmp_path, samples))
    _, rows, _ = _messages(localchat_store, samples[index]["conversation_id"])
    assert sum(m.metadata["hidden"] for m in rows) == hidden
    shown = [
        m
        for m in rows
        if m.metadata["on_current_branch"]
        and not m.metadata["hidden"]
        and m.content.strip()
        and m.metadata["content_type"] in ("text", "multimodal_text")
    ]
    assert (
        sum(m.role == "user" for m in shown),
        sum(m.role == "assistant" for m in shown),
    ) == visible


def test_text_is_extracted_per_content_type(localchat_store, tmp_path):
    samples = _samples()
    _import(localchat_store, _write(tmp_path, samples))
    _, rows, _ = _messages(localchat_store, samples[0]["conversation_id"])
    instructions = next(m for m in rows if m.metadata["content_type"] == "user_editable_context")
    assert instructions.role == "user" and "Preferred name" in instructions.content
    _, rows, _ = _messages(localchat_store, samples[1]["conversation_id"])
    image = next(m for m in rows if m.metadata["content_type"] == "multimodal_text")
    assert image.content.startswith("[image]\n")
    _, rows, _ = _messages(localchat_store, samples[2]["conversation_id"])
    code = next(m for m in rows if m.metadata["content_type"] == "code" and m.content)
    assert code.content.startswith("search(")
    assert any("\ue203" in m.content for m in rows)  # citation marks kept as they are


def test_an_attachment_without_its_file_is_a_metadata_only_document(localchat_store, tmp_path):
    samples = _samples()
    _import(localchat_store, _write(tmp_path, samples))
    with localchat_store.read_session():
        (doc,) = Document.select()
        assert doc.filename.endswith(".jpeg") and doc.sha256 is None and doc.size == 640100
        assert doc.message.metadata["content_type"] == "multimodal_text"


# -- branches, re-imports, details (our own synthetic conversations) -----------------


def test_every_branch_is_kept_and_the_current_leaf_is_marked(localchat_store, tmp_path):
    _import(localchat_store, _write(tmp_path, [_branched()]))
    conv, rows, by_id = _messages(localchat_store, "conv-branched")
    by_node = {m.metadata["node_id"]: m for m in rows}
    assert set(by_node) == {"q1", "a1", "q2", "a2", "a3"}
    assert by_node["q1"].parent_id is None and by_node["q2"].parent_id is None  # the root
    assert by_node["a3"].parent_id == by_node["q2"].id == by_node["a2"].parent_id
    assert by_id[by_node["a1"].parent_id] is by_node["q1"]
    assert by_node["a3"].metadata.get("current") is True
    assert [k for k, m in by_node.items() if m.metadata["on_current_branch"]] == ["q2", "a3"]
    assert by_node["a3"].created_at == by_node["q2"].created_at  # a null time: its parent's
    assert by_node["a3"].model == "o3" and conv.last_message == "answer B ✨"


def _branch(store, external_id) -> list[str]:
    """The node ids of the conversation's current branch, root first."""
    with store.read_session() as s:
        conv = Conversation.get(Conversation.external_id == external_id)
        shown = list_messages_for_conversation(s, conv.id, limit=None, latest=True)
        return [m.metadata["node_id"] for m in shown]


def test_an_imported_conversation_opens_on_chatgpts_current_branch(localchat_store, tmp_path):
    # a2 is the newest message; ChatGPT's current_node is its sibling a3
    _import(localchat_store, _write(tmp_path, [_branched()]))
    assert _branch(localchat_store, "conv-branched") == ["q2", "a3"]
    with localchat_store.session() as s:  # and the branch rules go on as usual
        conv, _, _ = _messages(localchat_store, "conv-branched")
        a1 = Message.get(Message.conversation == conv.id, Message.content == "answer to first")
        switch_branch(s, a1.id)
        assert get_current_leaf(s, conv.id).id == a1.id


def test_a_markdown_export_of_an_import_is_chatgpts_current_branch(localchat_store, tmp_path):
    _import(localchat_store, _write(tmp_path, [_branched()]))
    with localchat_store.read_session() as s:
        text = conversation_markdown(
            s, Conversation.get(Conversation.external_id == "conv-branched")
        )
    assert "second wording" in text and "answer B ✨" in text and "answer A" not in text


@pytest.mark.parametrize("current", ["gone", "client-created-root", None])
def test_a_current_node_without_an_imported_message_leaves_the_newest_leaf_current(
    localchat_store, tmp_path, current
):
    conv = _branched()
    conv["current_node"] = current
    _import(localchat_store, _write(tmp_path, [conv]))
    assert _branch(localchat_store, "conv-branched") == ["q2", "a2"]


def test_a_reimport_keeps_the_branch_the_user_chose_unless_chatgpt_went_on(
    localchat_store, tmp_path
):
    first = _branched()
    path = _write(tmp_path, [first])
    _import(localchat_store, path)
    conv, _, _ = _messages(localchat_store, "conv-branched")
    with localchat_store.session() as s:
        a1 = Message.get(Message.conversation == conv.id, Message.content == "answer to first")
        switch_branch(s, a1.id)
    _import(localchat_store, path)  # the same export again: nothing changes
    assert _branch(localchat_store, "conv-branched") == ["q1", "a1"]
    newer = copy.deepcopy(first)  # the user went on in ChatGPT below a3
    newer["mapping"]["a3"]["children"] = ["q3"]
    newer["mapping"]["q3"] = _node("q3", "a3", "user", "one more", 1_700_000_100.0)
    newer["current_node"] = "q3"
    _import(localchat_store, _write(tmp_path, [newer], "newer.json"))
    assert _branch(localchat_store, "conv-branched") == ["q2", "a3", "q3"]


def test_reimporting_a_newer_export_adds_only_new_conversations_and_messages(
    localchat_store, tmp_path
):
    first = _branched()
    _import(localchat_store, _write(tmp_path, [first]))
    newer = copy.deepcopy(first)
    newer["mapping"]["a3"]["children"] = ["q3"]
    newer["mapping"]["q3"] = _node("q3", "a3", "user", "one more", 1_700_000_100.0)
    newer["current_node"] = "q3"
    other = _branched(cid="conv-other", title=None, archived=True)
    report = _import(localchat_store, _write(tmp_path, [other, newer], "newer.json"))
    assert report.added == {"conversation": 1, "message": 6}
    assert report.skipped == {"conversation": 1, "message": 5}
    conv, rows, _ = _messages(localchat_store, "conv-branched")
    assert rows[-1].content == "one more" and conv.last_message == "one more"
    assert conv.updated_at == dt.datetime.fromtimestamp(1_700_000_100.0, dt.timezone.utc)
    again = _import(localchat_store, _write(tmp_path, [other, newer], "newer.json"))
    assert again.added == {}


def test_a_null_title_and_the_archived_state_carry_over(localchat_store, tmp_path):
    _import(localchat_store, _write(tmp_path, [_branched(cid="x", title=None, archived=True)]))
    conv, _, _ = _messages(localchat_store, "x")
    assert conv.title is None and conv.status == "archived"


def test_conversations_are_assigned_to_the_given_user(localchat_store, tmp_path):
    _import(localchat_store, _write(tmp_path, [_branched()]), user="ada@example.org")
    conv, _, _ = _messages(localchat_store, "conv-branched")
    with localchat_store.read_session():
        assert Conversation.get_by_id(conv.id).user.email == "ada@example.org"


# -- the zip ------------------------------------------------------------------------


def _zip(tmp_path: Path, entries: dict[str, bytes], name="export.zip") -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry, data in entries.items():
            zf.writestr(entry, data)
    return path


def _with_attachment() -> dict:
    conv = _branched()
    conv["mapping"]["q2"]["message"]["metadata"]["attachments"] = [
        {"id": "file-AbC123", "name": "photo.png", "size": 9, "mime_type": "image/png"}
    ]
    return conv


def test_a_zip_with_numbered_parts_and_files_imports_attachments_with_their_bytes(
    localchat_store, tmp_path
):
    second = _branched(cid="conv-2", title="Part two")
    path = _zip(
        tmp_path,
        {
            "conversations-000.json": json.dumps([_with_attachment()]).encode(),
            "conversations-001.json": json.dumps([second]).encode(),
            "file-AbC123-photo.png": b"\x89PNG-ish",
            "user.json": b"{}",
        },
    )
    assert detect_format(path) == "chatgpt"
    report = _import(localchat_store, path)
    assert report.added == {"conversation": 2, "message": 10, "document": 1}
    with localchat_store.read_session():
        (doc,) = Document.select()
        assert Path(doc.path).read_bytes() == b"\x89PNG-ish" and doc.filename == "photo.png"
        assert doc.message.metadata["node_id"] == "q2"


@pytest.mark.parametrize("entry", ["../evil.txt", "/etc/evil", "a/../../evil"])
def test_a_zip_entry_that_points_outside_is_refused_and_nothing_changes(
    localchat_store, tmp_path, entry
):
    path = _zip(tmp_path, {"conversations.json": json.dumps([_branched()]).encode(), entry: b"x"})
    with pytest.raises(ValidationError, match="outside the archive"):
        _import(localchat_store, path)
    assert localchat_store.table_counts()["conversation"] == 0


def test_a_zip_bomb_is_refused_before_it_is_inflated(localchat_store, tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("conversations.json", "w", force_zip64=True) as fp:
            chunk = b" " * (1 << 20)
            for _ in range(200):  # 200 MiB of spaces, deflated to a few hundred KB
                fp.write(chunk)
    with pytest.raises(ValidationError, match="zip bomb"):
        _import(localchat_store, path)


# -- hostile json ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[{"id": "a", "mapping": {}}, {"id": "b", "mapp', "truncated"),
        ('[{"id": "a", "mapping": []}]', "mapping must be an object"),
        ('[{"mapping": {}}]', "has no id"),
        ('[{"id": "a", "title": 5, "mapping": {}}]', "title must be text"),
        ('[{"id": "a", "mapping": {}, "create_time": "noon"}]', "epoch seconds"),
        (
            '[{"id": "a", "mapping": {"n": {"parent": null, "message": '
            '{"author": {"role": "wizard"}}}}}]',
            "author role",
        ),  # fmt: skip
        ("[1, 2]", "is not an object"),
        ('[{"id": "a", "mapping": {}} {"id": "b"}]', "expected ','"),
    ],
)
def test_bad_json_names_the_conversation_and_leaves_the_store_unchanged(
    localchat_store, tmp_path, text, expected
):
    good = _write(tmp_path, [_branched()], "good.json")
    _import(localchat_store, good)
    before = localchat_store.table_counts()
    bad = tmp_path / "bad.json"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError, match=expected):
        _import(localchat_store, bad, format="chatgpt")
    assert localchat_store.table_counts() == before


def test_a_cycle_in_the_tree_is_refused(localchat_store, tmp_path):
    conv = _branched()
    conv["mapping"]["client-created-root"]["parent"] = "a3"
    with pytest.raises(ValidationError, match="cycle"):
        _import(localchat_store, _write(tmp_path, [conv]))


def test_json_nested_too_deeply_is_refused(localchat_store, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" + "[" * 100_000 + "]" * 100_000 + "]", encoding="utf-8")
    with pytest.raises(ValidationError, match="nested too deeply|is not an object"):
        _import(localchat_store, deep)


def test_a_chatgpt_import_into_postgresql_keeps_every_branch(pg_session, tmp_path):
    path = _write(tmp_path, [_branched()])
    assert import_path(pg_session, path).added == {"conversation": 1, "message": 5}
    assert import_path(pg_session, path).added == {}
    a3 = Message.get(Message.content == "answer B ✨")
    assert a3.parent.metadata["node_id"] == "q2" and a3.metadata["current"] is True
    assert get_current_leaf(pg_session, a3.conversation_id).id == a3.id  # not a2, the newest
