"""The documentation's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Documents whose every ```python block is a complete, runnable example.
RUNNABLE = ["README.md", "docs/getting-started.md", "docs/portability.md"]


def _blocks(name: str) -> list[tuple[str, str]]:
    text = (ROOT / name).read_text(encoding="utf-8")
    found = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return [(f"{name}#{i}", code) for i, code in enumerate(found)]


EXAMPLES = [example for name in RUNNABLE for example in _blocks(name)]


def test_runnable_documents_have_examples():
    assert all(_blocks(name) for name in RUNNABLE)


@pytest.mark.parametrize(("where", "code"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_documentation_example_runs(where, code, capsys):
    exec(compile(code, where, "exec"), {"__name__": "__docs__"})


def test_every_cli_command_is_documented():
    from localchat.cli import build_parser

    docs = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    docs += (ROOT / "README.md").read_text(encoding="utf-8")
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    missing = [
        name
        for name in sub.choices
        if f"localchat {name}" not in docs
        and not re.search(rf"localchat (--\S+ \S+ )*{name}\b", docs)
    ]
    assert missing == []
