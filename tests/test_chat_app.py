"""The chat app (`localchat chat`), driven headless with Textual's pilot.

Each test starts the app on a temporary store, works it with keys, waits for
its workers, and checks both the store and what the window shows.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("textual", reason="the chat app needs the app extra: pip install '.[app]'")

from textual.widgets import Input, OptionList, Select, Static  # noqa: E402
from textual.worker import WorkerFailed  # noqa: E402

from localchat.app.data import ChatData  # noqa: E402
from localchat.app.fake_openai import FakeOpenAI  # noqa: E402
from localchat.app.llm import EchoModel, ModelError  # noqa: E402
from localchat.app.ui import ChatApp  # noqa: E402
from localchat.app.views import WINDOW  # noqa: E402
from localchat.app.widgets import Composer, MessageView  # noqa: E402
from localchat.models import Conversation, Document, Message, Response  # noqa: E402
from localchat.repository import (  # noqa: E402
    add_message,
    add_sibling,
    append_to_reply,
    create_conversation,
    create_model,
    create_service,
    get_current_leaf,
    get_response_for_message,
    list_messages_for_conversation,
    list_versions,
    record_response,
    start_reply,
)

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "imports" / "chatgpt-sample"
if not SAMPLES.is_dir():  # the worktree layout: /work/<worktree>/tests -> /work/shared
    SAMPLES = Path("/work/shared/data/imports/chatgpt-sample")

Pilot = Any


@pytest.fixture
def data(tmp_path: Path) -> ChatData:
    return ChatData.open(tmp_path / "chat.db")


def drive(
    app: ChatApp,
    script: Callable[[Pilot], Awaitable[None]],
    failures: int = 0,
    notifications: bool = False,
) -> None:
    """Run ``script`` on the app; no worker may fail (but ``failures`` of them).
    ``notifications``: draw the app's notifications (off by default in a pilot test)."""

    async def main() -> None:
        async with app.run_test(size=(120, 40), notifications=notifications) as pilot:
            await settle(pilot)
            await script(pilot)
            await settle(pilot)
            assert len(app.failures) == failures, app.failures

    asyncio.run(main())


async def settle(pilot: Pilot) -> None:
    """Wait until no worker runs (workers start workers: loop until quiet)."""
    for _ in range(100):
        try:
            await pilot.app.workers.wait_for_complete()
        except WorkerFailed:  # the app shows it (see the store error test)
            pass
        await pilot.pause()
        if not any(w.is_running or w.state.name == "PENDING" for w in pilot.app.workers):
            return


async def send(pilot: Pilot, text: str) -> None:
    pilot.app.query_one("#composer", Composer).focus()
    await pilot.press(*text, "enter")
    await settle(pilot)


async def data_job(pilot: Pilot, button: str, path: Path) -> str:
    """On the import/export screen: a path, a button; what the screen then says."""
    pilot.app.screen.query_one("#path", Input).value = str(path)
    await pilot.click(f"#{button}")
    await settle(pilot)
    return str(pilot.app.screen.query_one("#log", Static).render())


async def stop_reply(pilot: Pilot, text: str, *, after_text: bool = True) -> None:
    """Send ``text``, wait until its reply is drawn (``after_text``: with its first chunks),
    then press Esc and wait for the app to settle."""
    app = pilot.app
    app.query_one("#composer", Composer).focus()
    app.query_one("#composer", Composer).value = text
    await pilot.press("enter")
    for _ in range(200):
        await pilot.pause(0.02)
        if app.streaming and app.query(f"#m{app.streaming}"):
            if not after_text or app.query_one(f"#m{app.streaming}", MessageView).text:
                break
    await pilot.press("escape")
    await settle(pilot)


class ChunkSpy(ChatApp):
    """The app, noting (stored content, drawn text) of the reply at each chunk in ``seen``."""

    def __init__(self, data: ChatData, seen: list[tuple[str, str]]) -> None:
        super().__init__(data)
        self.seen = seen

    def _chunk(self, reply_id: int, piece: str) -> None:
        with self.data.store.read_session():
            stored = Message.get_by_id(reply_id).content
        super()._chunk(reply_id, piece)
        self.seen.append((stored, self.query_one(f"#m{reply_id}", MessageView).text))


def shown(app: ChatApp) -> list[str]:
    return [w.plain for w in app.query(MessageView)]


def rows(data: ChatData) -> list[Message]:
    with data.store.read_session():
        return list(Message.select().order_by(Message.id))


def test_the_app_starts_on_an_empty_store_with_an_empty_sidebar(data: ChatData) -> None:
    async def script(pilot: Pilot) -> None:
        app = pilot.app
        assert app.sidebar_rows == [] and app.view is None
        assert app.query_one("#conversations", OptionList).option_count == 0
        assert "type below" in str(app.query_one("#conv-title").render())

    drive(ChatApp(data), script)


def test_sending_streams_the_reply_into_the_window_and_the_store(data: ChatData) -> None:
    async def script(pilot: Pilot) -> None:
        await send(pilot, "where should I stay")
        app = pilot.app
        assert [r.title for r in app.sidebar_rows] == ["where should I stay"]
        texts = shown(app)
        assert len(texts) == 2 and texts[1].startswith("assistant · echo")
        assert texts[1].rstrip().endswith("where should I stay")
        assert "8 tokens" in texts[1]  # 4 prompt + 4 completion

    drive(ChatApp(data), script)
    question, answer = rows(data)
    assert (question.role, question.content) == ("user", "where should I stay")
    assert (answer.role, answer.status, answer.model) == ("assistant", "complete", "echo")
    assert answer.parent_id == question.id and answer.content == "where should I stay"


def test_every_chunk_is_in_the_store_before_it_is_drawn(data: ChatData) -> None:
    seen: list[tuple[str, str]] = []
    drive(ChunkSpy(data, seen), lambda pilot: send(pilot, "one two three"))
    assert seen == [("one", "one"), ("one two", "one two"), ("one two three", "one two three")]


def test_stopping_mid_reply_leaves_an_incomplete_message(data: ChatData) -> None:
    words = " ".join(f"w{i}" for i in range(40))

    async def script(pilot: Pilot) -> None:
        await stop_reply(pilot, words)
        assert "incomplete" in shown(pilot.app)[-1]

    drive(ChatApp(data, models=[EchoModel(delay=0.05)]), script)
    stopped = rows(data)[-1]
    assert stopped.status == "incomplete"
    assert stopped.content and words.startswith(stopped.content) and stopped.content != words


class Failing:
    """A model that sends one chunk, then fails."""

    key = "failing"
    usage = None

    def stream(self, messages: Sequence[dict[str, Any]]) -> Iterator[str]:
        yield "Half an"
        raise ModelError("connection refused by http://127.0.0.1:9/v1")


def test_a_failed_call_leaves_an_error_message_with_what_arrived(data: ChatData) -> None:
    async def script(pilot: Pilot) -> None:
        await send(pilot, "hello")
        assert "connection refused" in shown(pilot.app)[-1]

    drive(ChatApp(data, models=[Failing()]), script)
    failed = rows(data)[-1]
    assert (failed.status, failed.content) == ("error", "Half an")
    assert failed.error == "connection refused by http://127.0.0.1:9/v1"


def test_regenerate_makes_a_version_and_the_arrows_flip_between_them(data: ChatData) -> None:
    async def script(pilot: Pilot) -> None:
        app = pilot.app
        await send(pilot, "tell me a story")
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert "< 2/2 >" in shown(app)[-1]
        app.query(MessageView).last().focus()
        await pilot.press("left")
        await settle(pilot)
        assert "< 1/2 >" in shown(app)[-1]
        first = app.view.messages[-1].id
        with data.store.read_session() as s:
            assert get_current_leaf(s, app.view.id).id == first
        app.query(MessageView).last().focus()
        await pilot.press("right")
        await settle(pilot)
        assert "< 2/2 >" in shown(app)[-1]

    drive(ChatApp(data), script)
    assert [m.role for m in rows(data)] == ["user", "assistant", "assistant"]


def test_editing_a_question_makes_a_version_with_its_own_reply(data: ChatData) -> None:
    async def script(pilot: Pilot) -> None:
        app = pilot.app
        await send(pilot, "first words")
        await pilot.press("ctrl+e")
        composer = app.query_one("#composer", Composer)
        assert composer.value == "first words"
        composer.value = "second words"
        await pilot.press("enter")
        await settle(pilot)
        texts = shown(app)
        assert "< 2/2 >" in texts[0] and texts[1].rstrip().endswith("second words")

    drive(ChatApp(data), script)
    with data.store.read_session() as s:
        edited = [m for m in rows(data) if m.content == "second words" and m.role == "user"][0]
        assert list_versions(s, edited.id).label == "2 of 2"


def _two_branches(data: ChatData) -> tuple[int, int]:
    """A conversation whose current branch does not hold the message about walruses."""
    with data.store.session() as s:
        conv = create_conversation(s, title="Animals")
        q = add_message(s, conv.id, "user", "Tell me about walruses")
        add_message(s, conv.id, "assistant", "Walruses have tusks.")
        add_sibling(s, q.id, "Tell me about otters")
        add_message(s, conv.id, "assistant", "Otters hold hands.")
        return conv.id, q.id


def test_search_opens_the_hit_in_context_on_its_branch(data: ChatData) -> None:
    conv_id, walrus_id = _two_branches(data)

    async def script(pilot: Pilot) -> None:
        app = pilot.app
        assert "Otters hold hands." in shown(app)[-1]
        await pilot.press("ctrl+f")
        await pilot.press(*"walruses")
        await settle(pilot)
        hits = app.screen.query_one("#hits", OptionList)
        assert hits.option_count == 2
        assert app.screen.results[0].snippet.count("\ue000") == 1
        hits.focus()
        hits.highlighted = [r.message_id for r in app.screen.results].index(walrus_id)
        await pilot.press("enter")
        await settle(pilot)
        assert app.view.id == conv_id
        assert app.query_one(f"#m{walrus_id}", MessageView).has_class("hit")
        assert shown(app)[-1].rstrip().endswith("Walruses have tusks.")

    drive(ChatApp(data), script)
    with data.store.read_session() as s:
        assert get_current_leaf(s, conv_id).content == "Walruses have tusks."


def test_importing_the_chatgpt_samples_shows_their_conversations(
    data: ChatData, tmp_path: Path
) -> None:
    if not SAMPLES.is_dir():
        pytest.skip(f"the real ChatGPT samples (AGPL, never copied here) are not at {SAMPLES}")
    samples = [
        json.loads(p.read_text(encoding="utf-8")) for p in sorted(SAMPLES.glob("*.raw.json"))
    ]
    export = tmp_path / "conversations.json"
    export.write_text(json.dumps(samples), encoding="utf-8")

    async def script(pilot: Pilot) -> None:
        app = pilot.app
        await pilot.press("ctrl+o")
        assert "added 3 conversation" in await data_job(pilot, "import", export)
        await pilot.press("escape")
        await settle(pilot)
        assert {r.title for r in app.sidebar_rows} == {s["title"] for s in samples}
        for row in app.sidebar_rows:  # each opens on ChatGPT's current branch, hidden ones left out
            app.open_conversation(row.id)
            await settle(pilot)
            with data.store.read_session():
                query = Message.select().where(Message.conversation == row.id)
                expected = {
                    m.id
                    for m in query
                    if m.metadata["on_current_branch"] and not m.metadata["hidden"]
                }
            assert expected and {m.id for m in app.view.messages} == expected

    drive(ChatApp(data), script)


def test_attaching_a_document_lists_it_and_opens_its_text(data: ChatData, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Pack a raincoat.\n", encoding="utf-8")

    async def script(pilot: Pilot) -> None:
        app = pilot.app
        await send(pilot, "trip")
        await pilot.press("ctrl+d")
        screen = app.screen
        screen.query_one("#attach", Input).value = str(notes)
        screen.query_one("#attach", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        docs = screen.query_one("#docs", OptionList)
        assert docs.option_count == 1
        docs.focus()
        docs.highlighted = 0
        await pilot.press("enter")
        await settle(pilot)
        assert "Pack a raincoat." in str(screen.query_one("#content", Static).render())
        await pilot.press("escape")
        await settle(pilot)
        assert "notes.txt" in str(app.query_one("#documents").render())

    drive(ChatApp(data), script)
    with data.store.read_session():
        doc = Document.get()
        assert doc.filename == "notes.txt" and doc.conversation_id is not None


def test_reopening_the_app_shows_the_branch_the_user_left(data: ChatData) -> None:
    async def first(pilot: Pilot) -> None:
        await send(pilot, "pick one")
        await pilot.press("ctrl+r")
        await settle(pilot)
        pilot.app.query(MessageView).last().focus()
        await pilot.press("left")
        await settle(pilot)

    drive(ChatApp(data), first)
    chosen = rows(data)[1].id  # the first answer, flipped back to

    async def again(pilot: Pilot) -> None:
        assert pilot.app.view.messages[-1].id == chosen
        assert "< 1/2 >" in shown(pilot.app)[-1]

    drive(ChatApp(ChatData.open(data.store.path)), again)


def test_the_sidebar_puts_pinned_first_filters_by_tag_and_keeps_a_trash(data: ChatData) -> None:
    with data.store.session() as s:
        for title, pinned, tags in [("Old pinned", True, ["work"]), ("Newer", False, ["home"]),
                                    ("Newest", False, [])]:  # fmt: skip
            create_conversation(s, title=title, pinned=pinned, tags=tags)

    async def script(pilot: Pilot) -> None:
        app = pilot.app
        assert [r.title for r in app.sidebar_rows] == ["Old pinned", "Newest", "Newer"]
        app.query_one("#filter", Input).value = "#home"
        await settle(pilot)
        assert [r.title for r in app.sidebar_rows] == ["Newer"]
        app.query_one("#filter", Input).value = ""
        await settle(pilot)
        listing = app.query_one("#conversations", OptionList)
        listing.focus()
        listing.highlighted = 1
        await pilot.press("d")  # "Newest" to the trash
        await settle(pilot)
        assert [r.title for r in app.sidebar_rows] == ["Old pinned", "Newer"]
        await pilot.press("ctrl+t")
        await settle(pilot)
        assert [r.title for r in app.sidebar_rows] == ["Newest"]
        listing.focus()
        listing.highlighted = 0
        await pilot.press("d")  # restored
        await settle(pilot)
        await pilot.press("ctrl+t")
        await settle(pilot)
        listing.highlighted = 2
        await pilot.press("p")  # pin "Newer"
        await settle(pilot)
        assert [r.title for r in app.sidebar_rows][:2] == ["Newer", "Old pinned"]

    drive(ChatApp(data), script)
    with data.store.read_session():
        assert Conversation.get(Conversation.title == "Newest").trashed_at is None


def test_the_sidebar_loads_the_next_page_when_the_user_scrolls_near_its_end(
    data: ChatData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("localchat.app.ui.PAGE", 30)
    with data.store.session() as s:
        for i in range(45):
            create_conversation(s, title=f"chat {i}")

    async def script(pilot: Pilot) -> None:
        app = pilot.app
        assert len(app.sidebar_rows) == 30
        listing = app.query_one("#conversations", OptionList)
        listing.focus()
        listing.highlighted = 25
        await settle(pilot)
        assert len(app.sidebar_rows) == 45
        assert len({r.id for r in app.sidebar_rows}) == 45

    drive(ChatApp(data), script)


def test_the_usage_view_shows_tokens_per_model_per_day(data: ChatData) -> None:
    data.send(None, "count these four words", EchoModel())

    async def script(pilot: Pilot) -> None:
        await pilot.press("ctrl+u")
        await settle(pilot)
        table = pilot.app.screen.query_one("#usage")
        cells = [table.get_row_at(i) for i in range(table.row_count)]
        assert [str(cell) for cell in cells[0][1:]] == ["echo", "1", "4", "4", "8"]
        assert cells[-1][0] == "total"

    drive(ChatApp(data), script)


def test_typing_into_the_composer_does_not_wait_for_a_busy_store(data: ChatData) -> None:
    held, release = threading.Event(), threading.Event()

    def writer() -> None:  # another writer holds the write lock
        with data.store.session():
            held.set()
            release.wait(30)

    async def script(pilot: Pilot) -> None:
        app = pilot.app
        thread = threading.Thread(target=writer)
        thread.start()
        held.wait(10)
        try:
            await pilot.press(*"first", "enter")  # its worker waits for the lock
            await pilot.press(*"still typing")
            assert app.query_one("#composer", Composer).value == "still typing"
        finally:
            release.set()
            thread.join()

    drive(ChatApp(data), script)
    assert [m.content for m in rows(data)] == ["first", "first"]


def test_chat_without_textual_says_how_to_install_it(monkeypatch, capsys, tmp_path) -> None:
    import sys

    from localchat.cli import main

    monkeypatch.setitem(sys.modules, "textual", None)
    monkeypatch.delitem(sys.modules, "localchat.app.ui", raising=False)
    assert main(["--db", str(tmp_path / "x.db"), "chat"]) == 2
    assert "pip install 'localchat[app]'" in capsys.readouterr().err


def test_a_conversation_opens_on_its_last_messages_and_loads_older_ones(data: ChatData) -> None:
    with data.store.session() as s:
        conv = create_conversation(s, title="Long")
        for i in range(100):
            add_message(s, conv.id, "user" if i % 2 == 0 else "assistant", f"message {i}")

    async def script(pilot: Pilot) -> None:
        app = pilot.app
        assert app.view.older and len(app.view.messages) == WINDOW
        assert shown(app)[0].rstrip().endswith(f"message {100 - WINDOW}")
        await pilot.press("ctrl+l")
        await settle(pilot)
        assert not app.view.older and len(app.view.messages) == 100

    drive(ChatApp(data), script)
    with data.store.read_session() as s:
        assert len(list_messages_for_conversation(s, conv.id, limit=None, latest=True)) == 100


def test_a_reply_a_crash_left_streaming_opens_as_incomplete(data: ChatData) -> None:
    with data.store.session() as s:
        conv = create_conversation(s, title="Crashed")
        add_message(s, conv.id, "user", "go on")
        reply = start_reply(s, conv.id, model="echo")
        append_to_reply(s, reply.id, "Half of it")

    async def script(pilot: Pilot) -> None:
        assert pilot.app.recovered.is_set()
        pilot.app.open_conversation(conv.id)  # it may have been drawn before the clean-up
        await settle(pilot)
        assert "incomplete" in shown(pilot.app)[-1]

    drive(ChatApp(data), script)
    assert (rows(data)[-1].status, rows(data)[-1].content) == ("incomplete", "Half of it")


def test_the_screenshot_script_draws_every_screen(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    script = root / "scripts" / "chat_app_screenshots.py"
    proc = subprocess.run([sys.executable, str(script), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=root)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("conversation", "search", "documents", "usage"):
        svg = (tmp_path / f"{name}.svg").read_text(encoding="utf-8")
        assert svg.startswith("<svg") and "localchat" in svg
    assert "&lt;&#160;2/2&#160;&gt;" in (tmp_path / "conversation.svg").read_text(encoding="utf-8")


def test_a_store_error_in_a_worker_is_shown_and_the_app_stays_up(
    data: ChatData, monkeypatch: pytest.MonkeyPatch
) -> None:
    from localchat import StoreBusy

    data.send(None, "hello", EchoModel())

    def busy(*args: Any, **kwargs: Any) -> None:
        raise StoreBusy("the store is busy (another writer held it for 30 s).")

    async def script(pilot: Pilot) -> None:
        app = pilot.app
        monkeypatch.setattr(data, "conversation", busy)
        app.open_conversation(app.sidebar_rows[0].id)
        await settle(pilot)
        assert [type(e) for e in app.failures] == [StoreBusy] and app.is_running
        monkeypatch.undo()
        await send(pilot, "still working")
        assert shown(app)[-1].rstrip().endswith("still working")

    drive(ChatApp(data), script, failures=1)


def test_clicking_the_arrows_of_the_version_label_flips_versions(data: ChatData) -> None:
    async def script(pilot: Pilot) -> None:
        app = pilot.app
        await send(pilot, "pick one")
        await pilot.press("ctrl+r")
        await settle(pilot)
        answer = app.query(MessageView).last()
        assert answer.arrows is not None and "< 2/2 >" in shown(app)[-1]
        await pilot.click(answer, offset=(answer.arrows + 1, 0))  # "<" (after the padding)
        await settle(pilot)
        assert "< 1/2 >" in shown(app)[-1]
        answer = app.query(MessageView).last()
        await pilot.click(answer, offset=(answer.arrows + 1 + len("< 1/2 >") - 1, 0))  # ">"
        await settle(pilot)
        assert "< 2/2 >" in shown(app)[-1]

    drive(ChatApp(data), script)


class Shout:
    """A second model: the last message in capitals."""

    key = "shout"
    usage = None

    def stream(self, messages: Sequence[dict[str, Any]]) -> Iterator[str]:
        yield str(messages[-1]["content"]).upper()


def test_the_model_is_chosen_per_conversation_and_replies_with_it(data: ChatData) -> None:
    data.send(None, "an older chat", EchoModel())

    async def script(pilot: Pilot) -> None:
        from textual.widgets import Select

        app = pilot.app
        await pilot.press("ctrl+n")
        await send(pilot, "quiet please")
        app.query_one("#model", Select).value = "shout"
        await settle(pilot)
        await send(pilot, "quiet please")
        assert shown(app)[-1].startswith("assistant · shout")
        assert shown(app)[-1].rstrip().endswith("QUIET PLEASE")
        older = next(r.id for r in app.sidebar_rows if r.title == "an older chat")
        app.open_conversation(older)
        await settle(pilot)
        assert app.query_one("#model", Select).value == "echo" and app.model_key == "echo"

    drive(ChatApp(data, models=[EchoModel(), Shout()]), script)
    with data.store.read_session():
        conv = Conversation.get(Conversation.title == "quiet please")
        assert conv.default_model == "shout"
        assert [m.model for m in rows(data) if m.conversation_id == conv.id and m.model] == [
            "echo",
            "shout",
        ]


def test_export_and_backup_from_inside_the_app(data: ChatData, tmp_path: Path) -> None:
    data.send(None, "keep me", EchoModel())
    out = tmp_path / "all.jsonl"
    backups = tmp_path / "backups"
    backups.mkdir()

    async def script(pilot: Pilot) -> None:
        await pilot.press("ctrl+o")
        assert "exported" in await data_job(pilot, "export", out)
        assert "backup written" in await data_job(pilot, "backup", backups)

    drive(ChatApp(data), script)
    header = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert header["format"] == "localchat-export" and header["counts"]["message"] == 2
    assert len(list(backups.glob("localchat-backup-*.zip"))) == 1


@pytest.mark.parametrize("option", ["--app", "--app-name"])
def test_localchat_chat_opens_the_store_it_is_given(monkeypatch, tmp_path, option) -> None:
    from localchat.cli import main

    opened = []
    monkeypatch.setattr("localchat.app.ui.run", lambda db, app: opened.append((db, app)) or 0)
    assert main(["--db", str(tmp_path / "x.db"), "chat", option, "my-chat-app"]) == 0
    assert opened == [(str(tmp_path / "x.db"), "my-chat-app")]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["chat"], (None, "localchat")),  # the README's `localchat chat`: the per-user store
        (["--app", "my-chat-app", "chat"], (None, "my-chat-app")),
        (["chat", "--app-name", "other"], (None, "other")),
    ],
)
def test_localchat_chat_without_options_opens_the_per_user_store(monkeypatch, argv, expected):
    from localchat.cli import main

    opened = []
    monkeypatch.setattr("localchat.app.ui.run", lambda db, app: opened.append((db, app)) or 0)
    assert main(argv) == 0
    assert opened == [expected]


def test_the_code_in_an_answer_stands_out_and_a_question_is_shown_as_typed(
    data: ChatData,
) -> None:
    with data.store.session() as s:
        conv = create_conversation(s, title="Code")
        add_message(s, conv.id, "user", "```python\nx = 1\n```")
        add_message(s, conv.id, "assistant", "Use this:\n\n```python\nx = sorted(items)\n```\n")

    async def script(pilot: Pilot) -> None:
        question, answer = (w.renderable() for w in pilot.app.query(MessageView))
        code = answer.plain.index("x = sorted(items)")
        assert any(span.start <= code < span.end and "cyan" in str(span.style)
                   for span in answer.spans)  # fmt: skip
        code = question.plain.index("x = 1")
        assert not any(span.start <= code < span.end for span in question.spans)

    drive(ChatApp(data), script)


def _localchat_export(tmp_path: Path) -> Path:
    source = ChatData.open(tmp_path / "source.db")
    for title in ("Lisbon", "Penguins"):
        source.send(None, title, EchoModel())
    return (
        Path(tmp_path / "export.jsonl")
        if source.export_file(tmp_path / "export.jsonl")
        else tmp_path
    )


def _llm_logs(tmp_path: Path) -> Path:
    logs = SAMPLES.parent / "llm-logs.db"
    if not logs.is_file():
        pytest.skip(
            f"the llm logs fixture (shared test data, not in the repository) is not at {logs}"
        )
    copy = tmp_path / "logs.db"
    copy.write_bytes(logs.read_bytes())
    return copy


@pytest.mark.parametrize("source", [_localchat_export, _llm_logs], ids=["localchat", "llm"])
def test_importing_an_export_or_llm_logs_shows_their_conversations(
    data: ChatData, tmp_path: Path, source: Callable[[Path], Path]
) -> None:
    path = source(tmp_path)

    async def script(pilot: Pilot) -> None:
        await pilot.press("ctrl+o")
        assert "added" in await data_job(pilot, "import", path)
        await pilot.press("escape")
        await settle(pilot)
        with data.store.read_session():
            titles = {c.title or "(untitled)" for c in Conversation.select()}
        assert titles and {r.title for r in pilot.app.sidebar_rows} == titles

    drive(ChatApp(data), script)


def test_a_model_key_the_app_does_not_hold_is_asked_of_the_registry(data: ChatData) -> None:
    async def script(pilot: Pilot) -> None:
        pilot.app.model_key = "llama3:8b"  # e.g. registered after the app started
        await send(pilot, "who answers")
        assert shown(pilot.app)[-1].startswith("assistant · echo")  # model_for: unknown -> echo

    drive(ChatApp(data), script)


def test_the_composer_takes_several_lines_and_enter_sends_them(data: ChatData) -> None:
    async def script(pilot: Pilot) -> None:
        pilot.app.query_one("#composer", Composer).focus()
        await pilot.press("a", "ctrl+j", "b", "enter")
        await settle(pilot)
        assert pilot.app.query_one("#composer", Composer).value == ""

    drive(ChatApp(data), script)
    assert [m.content for m in rows(data)][0] == "a\nb"


# -- the HTTP model of the registry, against a local fake OpenAI-compatible server ---------


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(chunks=["Alfama ", "is ", "lovely."], usage=(12, 3)) as fake:
        yield fake


@pytest.fixture
def registered(data: ChatData, server: FakeOpenAI) -> str:
    """A local service (standing in for Ollama) with two chat models; the key of the one
    whose own name has a slash (as Hugging Face names do)."""
    with data.store.session() as s:
        local = create_service(s, "local", "ollama", base_url=server.base_url)
        create_model(s, local.id, "llama3")
        create_model(s, local.id, "org/model-7b")
    return "local/org/model-7b"


async def pick_model(pilot: Pilot, key: str) -> None:
    """Choose a model in the header's picker with the keyboard, as a person does."""
    picker = pilot.app.query_one("#model", Select)
    picker.focus()
    await pilot.press("enter")  # the list opens
    keys = [value for _, value in picker._options]
    moves = keys.index(key) - keys.index(picker.value)
    await pilot.press(*(["down"] * moves if moves > 0 else ["up"] * -moves), "enter")
    await settle(pilot)
    assert picker.value == key


def reply_of(data: ChatData) -> tuple[Message, Response | None]:
    with data.store.read_session() as s:
        reply = Message.select().order_by(Message.id.desc()).first()
        return reply, get_response_for_message(s, reply.id)


def test_the_picker_offers_the_registry_models_and_a_reply_streams_from_the_server(
    data: ChatData, server: FakeOpenAI, registered: str
) -> None:
    seen: list[tuple[str, str]] = []

    async def script(pilot: Pilot) -> None:
        app = pilot.app
        picker = app.query_one("#model", Select)
        assert [value for _, value in picker._options] == ["echo", "local/llama3", registered]
        await pick_model(pilot, registered)
        await send(pilot, "Where should I stay?")
        assert shown(app)[-1].startswith(f"assistant · {registered}")
        assert shown(app)[-1].rstrip().endswith("Alfama is lovely.")
        assert "15 tokens" in shown(app)[-1]

    drive(ChunkSpy(data, seen), script)
    assert seen == [("Alfama ", "Alfama "), ("Alfama is ", "Alfama is "),
                    ("Alfama is lovely.", "Alfama is lovely.")]  # fmt: skip
    body = server.requests[-1]["body"]
    assert body["model"] == "org/model-7b"
    assert body["messages"] == [{"role": "user", "content": "Where should I stay?"}]
    reply, response = reply_of(data)
    assert (reply.status, reply.content, reply.model) == ("complete", "Alfama is lovely.",
                                                          registered)  # fmt: skip
    assert response is not None
    assert (response.model_used, response.tokens_prompt, response.tokens_completion) == (
        registered, 12, 3)  # fmt: skip
    with data.store.read_session():
        assert Conversation.get().default_model == registered


def test_stopping_a_reply_of_the_server_keeps_what_arrived_and_closes_the_connection(
    data: ChatData, server: FakeOpenAI, registered: str
) -> None:
    server.chunks = [f"w{i} " for i in range(200)]
    server.delay = 0.05

    async def script(pilot: Pilot) -> None:
        await pick_model(pilot, registered)
        await stop_reply(pilot, "go on")
        assert "incomplete" in shown(pilot.app)[-1] and pilot.app.streaming is None

    drive(ChatApp(data), script)
    assert server.disconnected.wait(10)
    reply, response = reply_of(data)
    assert (reply.status, reply.model) == ("incomplete", registered)
    assert reply.content.startswith("w0 ") and "".join(server.chunks).startswith(reply.content)
    assert reply.content != "".join(server.chunks) and response is None


def test_a_server_error_is_shown_and_stored_and_the_composer_works_again(
    data: ChatData, server: FakeOpenAI, registered: str
) -> None:
    server.status = 500
    server.error_message = "the model is overloaded [/retry] in [b]5 s"  # not markup

    async def script(pilot: Pilot) -> None:
        app = pilot.app
        await pick_model(pilot, registered)
        await send(pilot, "hello")
        assert "error" in shown(app)[-1] and "HTTP 500" in shown(app)[-1]
        assert server.error_message in shown(app)[-1]
        await pilot.pause(0.1)
        toasts = [str(toast.render()) for toast in app.screen.query("Toast")]
        assert any(server.error_message in toast for toast in toasts), toasts
        server.status = 200
        await send(pilot, "again")
        assert shown(app)[-1].rstrip().endswith("Alfama is lovely.")

    drive(ChatApp(data), script, notifications=True)
    with data.store.read_session():
        failed = Message.get(Message.status == "error")
    assert failed.model == registered and "HTTP 500" in failed.error and failed.content == ""
    assert [m.content for m in rows(data)][-2:] == ["again", "Alfama is lovely."]


def test_reopening_the_app_keeps_the_model_of_the_conversation(
    data: ChatData, server: FakeOpenAI, registered: str
) -> None:
    async def first(pilot: Pilot) -> None:
        await pick_model(pilot, registered)
        await send(pilot, "first")

    drive(ChatApp(data), first)

    async def again(pilot: Pilot) -> None:
        app = pilot.app
        assert app.query_one("#model", Select).value == registered
        await send(pilot, "second")
        assert shown(app)[-1].startswith(f"assistant · {registered}")

    drive(ChatApp(ChatData.open(data.store.path)), again)
    assert [r["body"]["messages"][-1]["content"] for r in server.requests] == ["first", "second"]
    assert [m.model for m in rows(data) if m.role == "assistant"] == [registered, registered]


def test_a_conversation_drawn_before_the_registry_answers_keeps_its_model(
    data: ChatData, server: FakeOpenAI, registered: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from localchat.app import ui

    data.set_model(data.new_conversation("Lisbon", registered), registered)
    drawn = threading.Event()
    slow = ui.available_models

    def after_the_conversation(s: Any) -> Any:
        drawn.wait(10)  # the registry answers once the first conversation is on screen
        return slow(s)

    class Watched(ChatApp):
        async def _show(self, view: Any, focus: int | None = None) -> None:
            await super()._show(view, focus)
            drawn.set()

    monkeypatch.setattr(ui, "available_models", after_the_conversation)

    async def script(pilot: Pilot) -> None:
        app = pilot.app
        assert app.query_one("#model", Select).value == registered
        await send(pilot, "Where should I stay?")
        assert shown(app)[-1].startswith(f"assistant · {registered}")

    drive(Watched(data), script)
    assert len(server.requests) == 1


def test_the_picker_shows_a_model_name_with_brackets_as_written(
    data: ChatData, server: FakeOpenAI
) -> None:
    with data.store.session() as s:
        create_model(s, create_service(s, "local", "ollama", base_url=server.base_url).id,
                     "qwen[q4]")  # fmt: skip

    async def script(pilot: Pilot) -> None:
        await pick_model(pilot, "local/qwen[q4]")
        label = pilot.app.query_one("#model", Select).query_one("#label", Static)
        assert str(label.render()) == "local/qwen[q4]"

    drive(ChatApp(data), script)


def test_titles_file_names_and_model_names_are_shown_as_written_never_as_markup(
    data: ChatData, tmp_path: Path
) -> None:
    odd = "[/b] and [red]"  # what an import or a server may well contain
    notes = tmp_path / "notes [red].txt"
    notes.write_text("hi", encoding="utf-8")
    with data.store.session() as s:
        conv = create_conversation(s, title=f"Tags {odd}", default_model=f"m{odd}")
        add_message(s, conv.id, "user", "hello")
        reply = add_message(s, conv.id, "assistant", "hi", model=f"m{odd}")
        record_response(s, reply.id, f"m{odd}", 1, 1)
    data.attach(conv.id, notes)

    async def script(pilot: Pilot) -> None:
        app = pilot.app
        assert str(app.query_one("#conv-title", Static).render()) == f"Tags {odd}"
        assert "notes [red].txt" in str(app.query_one("#documents", Static).render())
        await pilot.press("ctrl+d")
        await settle(pilot)
        docs = app.screen.query_one("#docs", OptionList)
        assert "notes [red].txt" in str(docs.get_option_at_index(0).prompt)
        await pilot.press("escape")
        await pilot.press("ctrl+u")
        await settle(pilot)
        table = app.screen.query_one("#usage")
        assert table.get_row_at(0)[1].plain == f"m{odd}"
        app.screen.dismiss()
        await settle(pilot)

    drive(ChatApp(data), script)


def test_esc_stops_a_reply_while_the_model_is_still_silent(
    data: ChatData, server: FakeOpenAI, registered: str
) -> None:
    server.delay = 3.0  # the model thinks a long time before its first word

    async def script(pilot: Pilot) -> None:
        await pick_model(pilot, registered)
        await stop_reply(pilot, "think hard", after_text=False)
        assert "incomplete" in shown(pilot.app)[-1] and pilot.app.streaming is None

    drive(ChatApp(data), script)
    assert server.sent == 0  # the reply ended before the server said anything
    reply, _ = reply_of(data)
    assert (reply.status, reply.content) == ("incomplete", "")
