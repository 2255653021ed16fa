"""``localchat chat``: the Textual chat client, and the reference for embedding localchat.

    from localchat.app.data import ChatData
    from localchat.app.ui import ChatApp

    ChatApp(ChatData.open(app_name="my-chat-app")).run()   # what `localchat chat` does

Three panes: the sidebar (conversations: pinned first, then the most recent;
a filter box; the trash), the open conversation (its current branch) and the
composer. Every store call and every model call runs in a thread worker
(``@work(thread=True)``) and hands its result back with ``call_from_thread``:
the UI thread never waits on the store, so typing never stalls. What the
workers call is :mod:`localchat.app.data`; the modal screens (search,
documents, usage, import/export/backup) are in :mod:`localchat.app.screens`,
the message widget in :mod:`localchat.app.widgets`.
See docs/chat-app.md.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, cast

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Header, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState, get_current_worker

from ..errors import LocalchatError
from .data import ChatData
from .llm import ECHO, ChatModel, EchoModel, available_models, model_for
from .screens import DataScreen, DocumentsScreen, PromptScreen, SearchScreen, UsageScreen
from .views import PAGE, WINDOW, ConversationView, SearchResult, ShownMessage, SidebarRow
from .widgets import Composer, ConversationList, MessageView, sidebar_prompt

__all__ = ["ChatApp", "run"]

_ASK = "Message (Enter sends, ctrl+j: new line)"


def _choices(models: dict[str, ChatModel]) -> list[tuple[Text, str]]:
    """The picker's options: each model's key, shown as written (never read as markup)."""
    return [(Text(key), key) for key in models]


class ChatApp(App[None]):
    """The chat client on one store (``data``); ``models``: the models offered
    (default: the echo model and the registry's, see :func:`available_models`)."""

    TITLE = "localchat"
    CSS = """
    #sidebar { width: 36; border-right: solid $primary; }
    #conversations { height: 1fr; }
    #sidebar-mode { padding: 0 1; color: $text-muted; }
    #main { width: 1fr; }
    #conv-header { height: auto; }
    #conv-title { width: 1fr; padding: 0 1; text-style: bold; }
    #model { width: 28; }
    #documents { padding: 0 1; color: $text-muted; height: auto; }
    #messages { height: 1fr; }
    MessageView { padding: 0 1; margin: 0 0 1 0; }
    MessageView.user { background: $boost; }
    MessageView:focus { background: $accent 20%; }
    MessageView.hit { border-left: thick $warning; }
    """
    BINDINGS = [
        Binding("ctrl+n", "new_chat", "new chat", priority=True),
        Binding("ctrl+f", "search", "search", priority=True),
        Binding("escape", "stop", "stop reply"),
        Binding("ctrl+r", "regenerate_last", "regenerate", priority=True),
        Binding("ctrl+e", "edit_last", "edit", priority=True),
        Binding("ctrl+l", "older", "older messages", priority=True),
        Binding("ctrl+d", "documents", "documents", priority=True),
        Binding("ctrl+u", "usage", "usage", priority=True),
        Binding("ctrl+o", "data", "import/export", priority=True),
        Binding("ctrl+t", "toggle_trash", "trash", priority=True),
        Binding("ctrl+q", "quit", "quit"),
    ]

    def __init__(self, data: ChatData, models: Sequence[ChatModel] | None = None) -> None:
        super().__init__()
        self.data = data
        self.models: dict[str, ChatModel] = {m.key: m for m in (models or [EchoModel()])}
        self.model_key = next(iter(self.models), ECHO)
        self.registry_read = False  # the registry's models are in ``models`` (load_models)
        self.view: ConversationView | None = None  # the open conversation
        self.drawn: int | None = None  # the conversation whose messages are mounted
        self.sidebar_rows: list[SidebarRow] = []
        self.sidebar_done = False  # every page of the current listing is loaded
        self.trash_mode = False
        self.editing: ShownMessage | None = None
        self.streaming: int | None = None  # the reply being streamed (0: about to start)
        self._stop = threading.Event()
        self.recovered = threading.Event()  # set once the start-up clean-up is done
        self.failures: list[BaseException | None] = []  # what workers raised (shown to the user)

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="sidebar"):
                yield Input(placeholder="filter: words or #tag", id="filter")
                yield Label("Conversations", id="sidebar-mode")
                yield ConversationList(id="conversations")
            with Vertical(id="main"):
                with Horizontal(id="conv-header"):
                    yield Label("No conversation: type below to start one", id="conv-title")
                    yield Select(_choices(self.models), allow_blank=False, id="model")
                yield Label("", id="documents")
                yield VerticalScroll(id="messages")
                yield Composer(placeholder=_ASK, id="composer")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#composer", Composer).focus()
        self.load_sidebar(reset=True, open_first=True)
        self.recover()
        self.load_models()

    @work(thread=True, group="start", exit_on_error=False)
    def recover(self) -> None:
        """Replies a crash left streaming become incomplete, before anything streams."""
        try:
            self.data.recover()
        finally:
            self.recovered.set()

    # -- workers: every store and model call runs in a thread ---------------------------

    @work(thread=True, exclusive=True, group="models", exit_on_error=False)
    def load_models(self) -> None:
        with self.data.store.read_session() as s:
            found = available_models(s)
        self.call_from_thread(self._add_models, found)

    def _add_models(self, found: list[ChatModel]) -> None:
        self.models.update({m.key: m for m in found if m.key not in self.models})
        self.registry_read = True
        with self.prevent(Select.Changed):
            self.query_one("#model", Select).set_options(_choices(self.models))
        self._show_model()

    def _show_model(self) -> None:
        """The header's picker shows the model a reply would use: the open conversation's.
        A key the registry does not know (any more) answers with the echo model
        (``model_for``), so once the registry is read the picker says echo for it."""
        if self.model_key not in self.models:
            if not self.registry_read:
                return  # the registry may still name it
            self.model_key = ECHO
        with self.prevent(Select.Changed):
            self.query_one("#model", Select).value = self.model_key

    def load_sidebar(self, reset: bool = False, open_first: bool = False) -> None:
        """Load the sidebar's first page again (``reset``) or its next one."""
        query = self.query_one("#filter", Input).value.strip()
        offset = 0 if reset else len(self.sidebar_rows)
        self.sidebar_page(query, offset, self.trash_mode, reset, open_first)

    @work(thread=True, exclusive=True, group="sidebar", exit_on_error=False)
    def sidebar_page(
        self, query: str, offset: int, trash: bool, reset: bool, open_first: bool
    ) -> None:
        tag = query[1:] if query.startswith("#") and " " not in query else None
        words = "" if tag is not None else query
        if trash:
            rows, done = self.data.trash(), True
        else:
            rows = self.data.sidebar(offset=offset, limit=PAGE, tag=tag or None, query=words)
            done = len(rows) < PAGE or bool(words)
        if not get_current_worker().is_cancelled:
            self.call_from_thread(self._fill_sidebar, rows, reset, done, open_first)

    def _fill_sidebar(
        self, rows: list[SidebarRow], reset: bool, done: bool, open_first: bool
    ) -> None:
        listing = self.query_one("#conversations", OptionList)
        if reset:
            self.sidebar_rows = []
            listing.clear_options()
        self.sidebar_rows.extend(rows)
        self.sidebar_done = done
        listing.add_options([Option(sidebar_prompt(r), id=str(r.id)) for r in rows])
        if open_first and rows and self.view is None:
            self.open_conversation(rows[0].id)
        else:
            self._mark_open()

    def _mark_open(self) -> None:
        """Highlight the open conversation in the sidebar (when it is on a loaded page)."""
        if self.view is None:
            return
        index = next((i for i, r in enumerate(self.sidebar_rows) if r.id == self.view.id), None)
        listing = self.query_one("#conversations", OptionList)
        if index is not None and listing.highlighted != index:
            listing.highlighted = index

    @work(thread=True, exclusive=True, group="conversation", exit_on_error=False)
    def open_conversation(
        self, conv_id: int, focus: int | None = None, limit: int | None = None, in_context=False
    ) -> None:
        """Load a conversation's current branch (``in_context``: first make ``focus``'s
        branch the current one, if it is not)."""
        kwargs: dict[str, Any] = {"focus": focus} if limit is None else {"limit": limit}
        view = self.data.conversation(conv_id, **kwargs)
        if in_context and focus is not None and all(m.id != focus for m in view.messages):
            self.data.show_message(focus)
            view = self.data.conversation(conv_id, focus=focus)
        if not get_current_worker().is_cancelled:
            self.call_from_thread(cast(Any, self._show), view, focus)  # waits until drawn

    async def _show(self, view: ConversationView, focus: int | None = None) -> None:
        self.view = view
        tags = "  " + " ".join(f"#{t}" for t in view.tags) if view.tags else ""
        self.query_one("#conv-title", Label).update(Text(view.title + tags))  # never markup
        docs = ", ".join(d.filename for d in view.documents)
        self.query_one("#documents", Label).update(Text(f"documents: {docs}" if docs else ""))
        if view.model:  # the model it was last used with (its default_model)
            self.model_key = view.model
            self._show_model()
        box = self.query_one("#messages", VerticalScroll)
        widgets: list[Static] = []
        if view.older:
            widgets.append(Static("… older messages: ctrl+l", id="older"))
        widgets.extend(MessageView(m) for m in view.messages)
        with self.batch_update():
            await box.remove_children()
            await box.mount_all(widgets)
        if focus is not None and box.query(f"#m{focus}"):
            hit = box.query_one(f"#m{focus}", MessageView)
            hit.add_class("hit")
            self.call_after_refresh(hit.scroll_visible, animate=False)
        else:
            self.call_after_refresh(box.scroll_end, animate=False)
        self.drawn = view.id
        self._mark_open()

    def stream_answer(
        self,
        conv_id: int | None,
        text: str | None = None,
        *,
        edit_of: int | None = None,
        replaces: int | None = None,
        below: int | None = None,
    ) -> None:
        """Save the question (or its edit), then stream the reply into the store and the window,
        with the model chosen in the header (all in a worker)."""
        model = self.models.get(self.model_key)  # None: the worker asks the registry
        self.reply_worker(model, self.model_key, conv_id, text, edit_of, replaces, below)

    @work(thread=True, group="reply", exit_on_error=False)
    def reply_worker(
        self,
        model: ChatModel | None,
        key: str,
        conv_id: int | None,
        text: str | None,
        edit_of: int | None,
        replaces: int | None,
        below: int | None,
    ) -> None:
        try:
            if model is None:
                with self.data.store.read_session() as s:
                    model = model_for(s, key)  # the echo model for a key it does not know
            conv_id = self._answer(model, conv_id, text, edit_of, replaces, below)
        except LocalchatError as exc:  # the store said no (busy, full, read-only): say so
            self.call_from_thread(self.notify, str(exc), severity="error", markup=False)
        finally:
            self.call_from_thread(self._finished)
        if conv_id is not None:
            self.call_from_thread(self._replied, conv_id)

    def _answer(
        self,
        model: ChatModel,
        conv_id: int | None,
        text: str | None,
        edit_of: int | None,
        replaces: int | None,
        below: int | None,
    ) -> int:
        self.recovered.wait()
        parent = None
        if edit_of is not None and text is not None:
            parent = self.data.edit(edit_of, text)
        elif text is not None:
            new_conv = conv_id is None
            conv_id, parent = self.data.ask(conv_id, text, model.key, parent_id=below)
            if new_conv:
                self.call_from_thread(self.load_sidebar, reset=True)
        assert conv_id is not None
        shown, reply = conv_id, [0]

        def started(reply_id: int) -> None:
            reply[0] = reply_id
            view = self.data.conversation(shown)
            self.call_from_thread(cast(Any, self._started), view, reply_id)

        def chunk(piece: str) -> None:
            self.call_from_thread(self._chunk, reply[0], piece)

        outcome = self.data.reply(
            conv_id,
            model,
            parent_id=parent,
            replaces=replaces,
            on_start=started,
            on_chunk=chunk,
            stop=self._stop,
        )
        if outcome.status == "error":
            self.call_from_thread(
                self.notify, outcome.error or "error", severity="error", markup=False
            )
        return conv_id

    def _replied(self, conv_id: int) -> None:
        """Redraw the conversation (versions, tokens) unless the user moved on; the sidebar."""
        if self.view is None or self.view.id == conv_id:
            self.open_conversation(conv_id)
        self.load_sidebar(reset=True)

    async def _started(self, view: ConversationView, reply_id: int) -> None:
        self.streaming = reply_id
        if self.view is None or self.view.id == view.id:
            await self._show(view)

    def _chunk(self, reply_id: int, piece: str) -> None:
        found = self.query(f"#m{reply_id}")
        if found:
            widget = found.first(MessageView)
            widget.add_chunk(piece)
            self.query_one("#messages", VerticalScroll).scroll_end(animate=False)

    def _finished(self) -> None:
        self.streaming = None
        self._stop.clear()

    # -- events and actions --------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that failed (the store busy, full, damaged; a file gone) says so; the app
        stays up. Every worker is declared with ``exit_on_error=False``."""
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            text = f"{type(error).__name__}: {error}"
            self.notify(text, severity="error", timeout=10, markup=False)
            self.failures.append(error)
            if event.worker.group == "reply":
                self._finished()

    @on(OptionList.OptionSelected, "#conversations")
    def _conversation_chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option_id is not None:
            self.open_conversation(int(event.option_id))

    @on(OptionList.OptionHighlighted, "#conversations")
    def _near_the_end(self, event: OptionList.OptionHighlighted) -> None:
        if not self.sidebar_done and event.option_index >= len(self.sidebar_rows) - 20:
            self.sidebar_done = True  # until the next page arrives
            self.load_sidebar()

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self.load_sidebar(reset=True)

    @on(Select.Changed, "#model")
    def _model_chosen(self, event: Select.Changed) -> None:
        self.model_key = str(event.value)
        if self.view is not None:
            self._write(self.data.set_model, self.view.id, self.model_key)

    @work(thread=True, group="writes", exit_on_error=False)
    def _write(self, fn: Any, *args: Any, reload: str = "") -> None:
        """Run a small write off the UI thread; ``reload``: "sidebar", "conversation", "both"."""
        fn(*args)
        if reload in ("sidebar", "both"):
            self.call_from_thread(self.load_sidebar, reset=True)
        if reload in ("conversation", "both") and self.view is not None:
            self.call_from_thread(self.open_conversation, self.view.id)

    @on(Composer.Submitted, "#composer")
    def _send(self, event: Composer.Submitted) -> None:
        text = event.value.strip()
        if self.streaming is not None:
            self.notify("A reply is still streaming (Esc stops it).")
            return
        if not text:
            return
        self.streaming = 0  # until the reply exists
        event.composer.value = ""
        event.composer.placeholder = _ASK
        if self.editing is not None:
            edited, self.editing = self.editing, None
            self.stream_answer(self.view.id if self.view else None, text, edit_of=edited.id)
        elif self.view is not None:
            self.stream_answer(self.view.id, text, below=self.view.leaf_id)
        else:
            self.stream_answer(None, text)

    def action_stop(self) -> None:
        if self.streaming is not None:
            self._stop.set()
        elif self.editing is not None:
            self.editing = None
            composer = self.query_one("#composer", Composer)
            composer.value, composer.placeholder = "", _ASK

    def action_new_chat(self) -> None:
        self.view = None
        self.query_one("#messages", VerticalScroll).remove_children()
        self.query_one("#conv-title", Label).update("New conversation: type below")
        self.query_one("#documents", Label).update("")
        self.query_one("#composer", Composer).focus()

    def flip_version(self, message: ShownMessage, step: int) -> None:
        if self.view is not None and len(message.versions) > 1 and self.streaming is None:
            self._write(self.data.flip, message, step, reload="conversation")

    def regenerate(self, message_id: int) -> None:
        if self.view is not None and self.streaming is None:
            self.streaming = 0
            self.stream_answer(self.view.id, replaces=message_id)

    def start_edit(self, message: ShownMessage) -> None:
        self.editing = message
        composer = self.query_one("#composer", Composer)
        composer.value = message.content
        composer.placeholder = "Edit: Enter saves a new version, Esc cancels"
        composer.focus()

    def _last(self, role: str) -> ShownMessage | None:
        shown = self.view.messages if self.view else []
        return next((m for m in reversed(shown) if m.role == role), None)

    def action_regenerate_last(self) -> None:
        last = self._last("assistant")
        if last is not None:
            self.regenerate(last.id)

    def action_edit_last(self) -> None:
        last = self._last("user")
        if last is not None:
            self.start_edit(last)

    def action_older(self) -> None:
        if self.view is not None and self.view.older:
            self.open_conversation(self.view.id, limit=len(self.view.messages) + 4 * WINDOW)

    def action_toggle_trash(self) -> None:
        self.trash_mode = not self.trash_mode
        self.query_one("#sidebar-mode", Label).update(
            "Trash (d restores)" if self.trash_mode else "Conversations"
        )
        self.load_sidebar(reset=True)

    def sidebar_key(self, key: str, row: SidebarRow) -> None:
        """``p`` pins, ``d`` trashes (restores in the trash), ``t`` edits the tags of a row."""
        if key == "p" and not row.trashed:
            self._write(self.data.set_pinned, row.id, not row.pinned, reload="sidebar")
        elif key == "d":
            self._write(self.data.set_trashed, row.id, not row.trashed, reload="sidebar")
        elif key == "t":

            def tags(value: str | None) -> None:
                if value is not None:
                    names = [t.lstrip("#") for t in value.replace(",", " ").split() if t.strip("#")]
                    self._write(self.data.set_tags, row.id, names, reload="both")

            self.push_screen(PromptScreen("Tags (space separated)", " ".join(row.tags)), tags)

    def action_search(self) -> None:
        def chosen(hit: SearchResult | None) -> None:
            if hit is not None:
                self.open_conversation(hit.conversation_id, focus=hit.message_id, in_context=True)

        self.push_screen(SearchScreen(self.data), chosen)

    def action_documents(self) -> None:
        if self.view is not None:
            self.push_screen(
                DocumentsScreen(self.data, self.view.id, self.view.documents),
                self._reopen,
            )

    def _reopen(self, _: object = None) -> None:
        if self.view is not None:
            self.open_conversation(self.view.id)

    def action_usage(self) -> None:
        self.push_screen(UsageScreen(self.data))

    def action_data(self) -> None:
        self.push_screen(DataScreen(self.data), self._reload_sidebar)

    def _reload_sidebar(self, _: object = None) -> None:
        self.load_sidebar(reset=True)


def run(db: str | None = None, app_name: str = "localchat") -> int:
    """Open the store and run the app until the user quits (``localchat chat``)."""
    echo = EchoModel(delay=0.03)  # a word at a time, so a person sees it stream (and can stop it)
    ChatApp(ChatData.open(db, app_name=app_name), models=[echo]).run()
    return 0
