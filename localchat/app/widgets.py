"""The chat app's own widgets: a message of the open branch, the sidebar's list, the composer.

    from localchat.app.widgets import MessageView
    box.mount(MessageView(shown_message))     # role, model, time, tokens, status, < 2/3 >, text

Only drawing here: what a key or a click on a message does is the app's
(:class:`localchat.app.ui.ChatApp`: ``flip_version``, ``regenerate``, ``start_edit``).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.events import Click
from textual.message import Message
from textual.widgets import OptionList, Static, TextArea

from .views import ShownMessage, SidebarRow

__all__ = ["MessageView", "ConversationList", "Composer", "sidebar_prompt"]

_ROLE_STYLE = {"user": "bold cyan", "assistant": "bold green", "system": "bold magenta"}


def _styled(text: str) -> Text:
    """An answer's Markdown, lightly: fenced code and headings styled, the rest as written.

    (Rich's full Markdown rendering, syntax highlighting included, made switching to a
    conversation of code-heavy answers take about twice as long: every message is laid
    out to know its height.)
    """
    out = Text()
    code = False
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("```"):
            code = not code
            out.append(line, "dim")
        elif code:
            out.append(line, "bold cyan")
        elif line.startswith("#"):
            out.append(line, "bold underline")
        else:
            out.append(line)
    return out


def sidebar_prompt(row: SidebarRow) -> Text:
    text = Text()
    if row.pinned:
        text.append("● ", "yellow")
    text.append(row.title, "bold" if row.pinned else "")
    meta = row.updated_at.astimezone().strftime("%Y-%m-%d %H:%M")
    if row.tags:
        meta += "  " + " ".join(f"#{t}" for t in row.tags)
    text.append("\n" + meta, "dim")
    return text


class MessageView(Static, can_focus=True):
    """One message: role, model, time, tokens, status, ``< 2/3 >``, then its text.

    Keys when focused: left/right flip versions, r regenerates (assistant), e edits (user).
    """

    BINDINGS = [
        Binding("left", "flip(-1)", "older version"),
        Binding("right", "flip(1)", "newer version"),
        Binding("r", "regenerate", "regenerate"),
        Binding("e", "edit", "edit"),
    ]

    def __init__(self, message: ShownMessage) -> None:
        self.message = message
        self.text = message.content
        self.arrows: int | None = None
        super().__init__(self.renderable(), id=f"m{message.id}", classes=message.role)

    def _header(self) -> Text:
        m = self.message
        out = Text(m.role, _ROLE_STYLE.get(m.role, "bold"))
        if m.model:
            out.append(f" · {m.model}", "italic")
        out.append(" · " + m.created_at.astimezone().strftime("%Y-%m-%d %H:%M"), "dim")
        if m.tokens is not None:
            out.append(f" · {m.tokens} tokens", "dim")
        if m.status != "complete":
            out.append(f" · {m.status}", "bold red" if m.status == "error" else "yellow")
        if len(m.versions) > 1:
            out.append("  ")
            self.arrows = len(out.plain)  # where "<" is on the first line (">" ends the label)
            out.append(f"< {m.position}/{len(m.versions)} >", "bold reverse")
        return out

    def renderable(self) -> Text:
        """The header, then the text: an answer's code blocks and headings stand out, a
        question is shown as typed."""
        error = Text(f"\n[{self.message.error}]" if self.message.error else "", "red")
        body = _styled(self.text) if self.message.role == "assistant" else Text(self.text)
        return Text.assemble(self._header(), "\n", body, error)

    @property
    def plain(self) -> str:
        """What the message says, as plain text: its header line, then its text."""
        error = f"\n[{self.message.error}]" if self.message.error else ""
        return f"{self._header().plain}\n{self.text}{error}"

    def on_click(self, event: Click) -> None:
        """A click on the ``<`` or ``>`` of the version label flips versions."""
        if self.arrows is None or event.y != 0:
            return
        column = event.x - 1  # the left padding
        label = len(f"< {self.message.position}/{len(self.message.versions)} >")
        if column == self.arrows:
            self.action_flip(-1)
        elif column == self.arrows + label - 1:
            self.action_flip(1)

    def add_chunk(self, chunk: str) -> None:
        self.text += chunk
        self.update(self.renderable())

    def action_flip(self, step: int) -> None:
        self.app_.flip_version(self.message, step)

    def action_regenerate(self) -> None:
        if self.message.role == "assistant":
            self.app_.regenerate(self.message.id)

    def action_edit(self) -> None:
        if self.message.role == "user":
            self.app_.start_edit(self.message)

    @property
    def app_(self) -> Any:
        return self.app  # the ChatApp: flip_version, regenerate, start_edit


class ConversationList(OptionList):
    """The sidebar's conversations. Keys on the highlighted one: p pins, d trashes (or
    restores), t edits its tags (the app's ``sidebar_key`` does it)."""

    BINDINGS = [
        Binding("p", "row('p')", "pin"),
        Binding("d", "row('d')", "trash/restore"),
        Binding("t", "row('t')", "tags"),
    ]

    def action_row(self, key: str) -> None:
        app: Any = self.app  # the ChatApp
        if self.highlighted is not None and self.highlighted < len(app.sidebar_rows):
            app.sidebar_key(key, app.sidebar_rows[self.highlighted])


class Composer(TextArea):
    """The message box: Enter sends (a :class:`Composer.Submitted`); ``ctrl+j`` (or
    shift+Enter / alt+Enter, where the terminal tells them apart) starts a new line;
    pasted text keeps its lines."""

    DEFAULT_CSS = "Composer { height: auto; min-height: 3; max-height: 12; }"
    NEWLINE = ("ctrl+j", "shift+enter", "alt+enter")

    class Submitted(Message):
        """Enter was pressed: ``value`` is the text."""

        def __init__(self, composer: Composer, value: str) -> None:
            super().__init__()
            self.composer, self.value = composer, value

        @property
        def control(self) -> Composer:
            return self.composer

    @property
    def value(self) -> str:
        return self.text

    @value.setter
    def value(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self, self.text))
        elif event.key in self.NEWLINE:
            event.stop()
            event.prevent_default()
            self.insert("\n")
        else:
            await super()._on_key(event)
