"""Regenerate the chat app's screenshots in docs/chat-app/ (SVG, Textual's own screenshots).

    $ python scripts/chat_app_screenshots.py                 # writes docs/chat-app/*.svg
    $ python scripts/chat_app_screenshots.py --out /tmp/shots

Builds a small demo store in a temporary folder (a few conversations, a
regenerated answer, a stopped one, a document, token counts), drives the app
headless with the pilot and saves one screenshot per screen. The test suite
runs it into a temporary folder, so it cannot rot.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ("conversation", "search", "documents", "usage")


class Canned:
    """A stand-in model that answers with a fixed text, word by word."""

    def __init__(self, key: str, answers: list[str]) -> None:
        self.key, self.answers = key, list(answers)
        self.usage: dict[str, int | None] | None = None

    def stream(self, messages: Sequence[dict[str, Any]]) -> Iterator[str]:
        text = self.answers.pop(0) if self.answers else "Sure."
        words = text.split(" ")
        for i, word in enumerate(words):
            yield word if i == 0 else " " + word
        prompt = sum(len(str(m["content"]).split()) * 4 // 3 for m in messages)
        self.usage = {"prompt_tokens": prompt, "completion_tokens": len(words) * 4 // 3}


def demo_store(folder: Path) -> Any:
    from localchat.app.data import ChatData

    data = ChatData.open(folder / "demo.db")
    llama = Canned(
        "llama3",
        [
            "Alfama, the oldest part of Lisbon: steep lanes, tiled houses, fado at night.",
            "Príncipe Real: quiet squares, good cafés, and a short walk to everything.",
            "Lisbon is best on foot; take the 28 tram early, before the crowds.",
        ],
    )
    out = data.send(None, "Which part of Lisbon should I stay in for a week?", llama)
    conv_id = data.sidebar()[0].id
    data.reply(conv_id, llama, replaces=out.message_id)  # a regenerated answer: < 2/2 >
    data.send(conv_id, "And how do I get around?", llama)
    data.set_pinned(conv_id, True)
    data.set_tags(conv_id, ["travel", "2026"])
    notes = folder / "packing-list.txt"
    notes.write_text("Packing list\n\n- raincoat\n- walking shoes\n- adapter (type F)\n")
    data.attach(conv_id, notes)
    qwen = Canned("qwen2.5-coder", ["Use `sorted(items, key=len)`: it returns a new list."])
    data.send(None, "How do I sort a list of strings by length in Python?", qwen)
    mistral = Canned("mistral", ["Penguins huddle to keep warm; the ones outside rotate in."])
    data.send(None, "Why do penguins huddle?", mistral)
    data.set_tags(data.sidebar(query="penguins")[0].id, ["animals"])
    return data


async def shoot(data: Any, out: Path) -> list[Path]:
    from localchat.app.llm import EchoModel
    from localchat.app.ui import ChatApp

    app = ChatApp(data, models=[EchoModel(), Canned("llama3", [])])
    written = []

    async def settle() -> None:
        for _ in range(50):
            await app.workers.wait_for_complete()
            await pilot.pause()
            if not any(w.is_running for w in app.workers):
                return

    async with app.run_test(size=(130, 38)) as pilot:
        await settle()
        lisbon = next(r.id for r in app.sidebar_rows if r.pinned)
        app.open_conversation(lisbon)
        await settle()
        written.append(Path(app.save_screenshot("conversation.svg", str(out))))
        await pilot.press("ctrl+f")
        await pilot.press(*"lisbon")
        await settle()
        written.append(Path(app.save_screenshot("search.svg", str(out))))
        await pilot.press("escape")
        await pilot.press("ctrl+d")
        await settle()
        docs = app.screen.query_one("#docs")
        docs.focus()
        docs.highlighted = 0  # type: ignore[attr-defined]
        await pilot.press("enter")
        await settle()
        written.append(Path(app.save_screenshot("documents.svg", str(out))))
        await pilot.press("escape")
        await pilot.press("ctrl+u")
        await settle()
        written.append(Path(app.save_screenshot("usage.svg", str(out))))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "chat-app")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = demo_store(Path(tmp))
        for path in asyncio.run(shoot(data, args.out)):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
