"""The chat app's modal screens: search, documents, usage, import/export/backup, a prompt.

    from localchat.app.screens import SearchScreen
    app.push_screen(SearchScreen(data), on_hit)     # on_hit(SearchResult | None)

Like the main screen, each loads and writes in thread workers through
:class:`localchat.app.data.ChatData` and never blocks the UI thread. Escape closes.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from ..errors import LocalchatError
from .data import ChatData
from .views import MARKERS, DocumentRow, SearchResult

__all__ = [
    "highlighted",
    "PromptScreen",
    "SearchScreen",
    "DocumentsScreen",
    "UsageScreen",
    "DataScreen",
]

_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 90%; height: 85%; border: thick $primary; background: $surface;
                     padding: 0 1; }}
{name} OptionList, {name} DataTable, {name} VerticalScroll {{ height: 1fr; }}
{name} Horizontal {{ height: auto; }}
"""


def highlighted(snippet: str) -> Text:
    """A search snippet with its matches (between :data:`MARKERS`) in reverse video."""
    out = Text()
    start, end = MARKERS
    for i, part in enumerate(snippet.split(start)):
        if i == 0:
            out.append(part)
            continue
        hit, _, rest = part.partition(end)
        out.append(hit, "bold reverse")
        out.append(rest)
    return out


class _Modal(ModalScreen[Any]):
    BINDINGS = [Binding("escape", "dismiss(None)", "close")]


class PromptScreen(_Modal):
    """Asks for one line of text; dismisses with it (None on escape)."""

    DEFAULT_CSS = _CSS.format(name="PromptScreen").replace("85%", "7")

    def __init__(self, question: str, value: str = "") -> None:
        super().__init__()
        self.question, self.value = question, value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield Input(self.value, id="answer")

    @on(Input.Submitted)
    def _done(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


class SearchScreen(_Modal):
    """Full-text search over every message; Enter on a hit opens it in its conversation."""

    DEFAULT_CSS = _CSS.format(name="SearchScreen")

    def __init__(self, data: ChatData) -> None:
        super().__init__()
        self.data = data
        self.results: list[SearchResult] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Input(placeholder="search every conversation", id="query")
            yield Label("", id="count")
            yield OptionList(id="hits")

    @on(Input.Changed, "#query")
    def _changed(self, event: Input.Changed) -> None:
        self.run_search(event.value)

    @on(Input.Submitted, "#query")
    def _to_hits(self) -> None:
        self.query_one("#hits", OptionList).focus()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def run_search(self, query: str) -> None:
        try:
            results = self.data.search(query)
        except LocalchatError as exc:  # a query over a bound: say so
            self.app.call_from_thread(self.query_one("#count", Label).update, Text(str(exc)))
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._fill, results)

    def _fill(self, results: list[SearchResult]) -> None:
        self.results = results
        hits = self.query_one("#hits", OptionList)
        hits.clear_options()
        for r in results:
            line = Text(f"{r.title} · {r.role}\n", "bold")
            line.append_text(highlighted(" ".join(r.snippet.split())))
            hits.add_option(Option(line))
        self.query_one("#count", Label).update(f"{len(results)} hit(s)")

    @on(OptionList.OptionSelected, "#hits")
    def _open(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.results[event.option_index])


class DocumentsScreen(_Modal):
    """The conversation's documents: Enter opens one; a path in the box attaches a file."""

    DEFAULT_CSS = _CSS.format(name="DocumentsScreen")

    def __init__(self, data: ChatData, conv_id: int, documents: list[DocumentRow]) -> None:
        super().__init__()
        self.data, self.conv_id, self.documents = data, conv_id, list(documents)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Documents of this conversation (Enter opens)")
            yield OptionList(*[self._option(d) for d in self.documents], id="docs")
            yield Input(placeholder="path of a file to attach (Enter)", id="attach")
            with VerticalScroll(id="viewer"):
                yield Static("", id="content")

    @staticmethod
    def _option(d: DocumentRow) -> Option:
        return Option(Text(f"{d.filename}  ({d.size or 0} bytes, {d.mime_type or '?'})"))

    @on(Input.Submitted, "#attach")
    def _attach_path(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.attach(event.value.strip())

    @work(thread=True, exit_on_error=False)
    def attach(self, path: str) -> None:
        try:
            doc = self.data.attach(self.conv_id, path)
        except LocalchatError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", markup=False)
            return
        self.app.call_from_thread(self._attached, doc)

    def _attached(self, doc: DocumentRow) -> None:
        self.documents.insert(0, doc)
        docs = self.query_one("#docs", OptionList)
        docs.clear_options()
        docs.add_options([self._option(d) for d in self.documents])
        self.query_one("#attach", Input).value = ""

    @on(OptionList.OptionSelected, "#docs")
    def _open(self, event: OptionList.OptionSelected) -> None:
        self.show(self.documents[event.option_index].id)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def show(self, doc_id: int) -> None:
        try:
            text = self.data.read_document(doc_id)
        except LocalchatError as exc:
            text = f"cannot open it: {exc}"
        self.app.call_from_thread(self.query_one("#content", Static).update, Text(text))


class UsageScreen(_Modal):
    """Tokens per model per day (``store_stats``)."""

    DEFAULT_CSS = _CSS.format(name="UsageScreen")

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Usage: tokens per model per day", id="usage-title")
            yield DataTable(id="usage")

    def __init__(self, data: ChatData) -> None:
        super().__init__()
        self.data = data

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(
            "day", "model", "replies", "prompt", "completion", "total"
        )
        self.load()

    @work(thread=True, exit_on_error=False)
    def load(self) -> None:
        report = self.data.usage("day")
        rows: list[tuple[Any, ...]] = [
            (
                r["period"],
                Text(r["model"] or "?"),  # a model's name is never read as markup
                r["messages"],
                r["tokens_prompt"],
                r["tokens_completion"],
                r["tokens_total"],
            )
            for r in report.responses
        ]
        total = report.totals["responses"]
        rows.append(
            (
                "total",
                "",
                total["messages"],
                total["tokens_prompt"],
                total["tokens_completion"],
                total["tokens_total"],
            )
        )
        self.app.call_from_thread(self.query_one(DataTable).add_rows, rows)


class DataScreen(_Modal):
    """Import a file (ChatGPT export, llm logs.db, localchat export), export, back up."""

    DEFAULT_CSS = _CSS.format(name="DataScreen")

    def __init__(self, data: ChatData) -> None:
        super().__init__()
        self.data = data

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("A file or folder path:")
            yield Input(
                placeholder="conversations.json / export.zip / logs.db / x.jsonl", id="path"
            )
            with Horizontal():
                yield Button("Import", id="import", variant="primary")
                yield Button("Export (JSON Lines)", id="export")
                yield Button("Back up (zip)", id="backup")
            with VerticalScroll():
                yield Static("", id="log")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        path = self.query_one("#path", Input).value.strip()
        if event.button.id and (path or event.button.id == "backup"):
            self.run_job(event.button.id, path)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def run_job(self, job: str, path: str) -> None:
        try:
            if job == "import":
                report = self.data.import_file(path)
                added = ", ".join(f"{n} {t}" for t, n in report.added.items()) or "nothing"
                line = f"imported {path} ({report.format}): added {added}."
            elif job == "export":
                written = self.data.export_file(path)
                line = f"exported {sum(written.values())} records to {path}."
            else:
                result = self.data.backup(path or None)
                line = f"backup written: {result.archive}"
        except (LocalchatError, OSError) as exc:
            line = f"error: {exc}"
        self.app.call_from_thread(self._log, line)

    def _log(self, line: str) -> None:
        log = self.query_one("#log", Static)
        log.update(Text(line))
