"""The documentation's Python examples run as written.

``docs/api.md`` runs section by section: each ``##`` section's examples run in
one session (after ``from localchat.repository import *``), after the sections
it continues (marked ``<!-- examples: continue the section above -->``).
"""

from __future__ import annotations

import re
import tempfile
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Documents whose every ```python block is a complete, runnable example.
RUNNABLE = [
    "README.md",
    "docs/getting-started.md",
    "docs/portability.md",
    "docs/chat-window.md",
    "docs/maintenance.md",
    "docs/async-and-web.md",
]
API = "docs/api.md"
CONTINUES = "<!-- examples: continue the section above -->"
API_PRELUDE = (
    "from localchat import InvocationParams, local_session\n"
    "from localchat.repository import *\n"
    "with local_session() as s:\n"
)


def _code(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _blocks(name: str) -> list[tuple[str, str]]:
    found = _code((ROOT / name).read_text(encoding="utf-8"))
    return [(f"{name}#{i}", code) for i, code in enumerate(found)]


def _api_sections() -> list[tuple[str, str]]:
    """``(title, text)`` of every ``##`` section of the API reference, in order."""
    text = (ROOT / API).read_text(encoding="utf-8")
    parts = re.split(r"^## (.+)\n", text, flags=re.M)[1:]
    return list(zip(parts[0::2], parts[1::2], strict=True))


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _api_example(index: int) -> str:
    """The code of section ``index``, after the code of the sections it continues."""
    sections = _api_sections()
    start = index
    while sections[start][1].lstrip().startswith(CONTINUES):
        start -= 1
    code = "\n".join(block for _, text in sections[start : index + 1] for block in _code(text))
    return API_PRELUDE + textwrap.indent(code, "    ")


EXAMPLES = [example for name in RUNNABLE for example in _blocks(name)]
API_SECTIONS = [title for title, _ in _api_sections()]


def test_runnable_documents_have_examples():
    assert all(_blocks(name) for name in RUNNABLE)


@pytest.mark.parametrize(("where", "code"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_documentation_example_runs(where, code, capsys):
    exec(compile(code, where, "exec"), {"__name__": "__docs__"})


def test_every_api_reference_section_has_an_example():
    assert [title for title, text in _api_sections() if not _code(text)] == []
    assert not _api_sections()[0][1].lstrip().startswith(CONTINUES)


@pytest.mark.parametrize(
    "index", range(len(API_SECTIONS)), ids=[f"api.md#{_slug(t)}" for t in API_SECTIONS]
)
def test_api_reference_section_examples_run(index, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # scratch files and stores
    monkeypatch.chdir(tmp_path)
    where = f"{API}#{_slug(API_SECTIONS[index])}"
    exec(compile(_api_example(index), where, "exec"), {"__name__": "__docs__"})


def test_the_migration_guide_example_takes_the_next_free_number():
    text = (ROOT / "docs" / "migrations.md").read_text(encoding="utf-8")
    example = re.search(r"e\.g\. `migrations/(\d+)_\w+\.py`", text)
    shipped = [int(p.name.split("_")[0]) for p in (ROOT / "migrations").glob("[0-9]*_*.py")]
    assert example is not None and int(example.group(1)) == max(shipped) + 1
    assert not re.search(r"Adding 0\d+", text)


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


def test_the_search_module_docstring_is_usage_and_a_pointer_to_the_search_guide():
    import localchat.search

    doc = localchat.search.__doc__ or ""
    assert "docs/search.md" in doc and len(doc.splitlines()) <= 20
    guide = (ROOT / "docs" / "search.md").read_text(encoding="utf-8")
    for topic in (
        "quoted as an FTS5 string",
        "remove_diacritics 2",
        "SCORED_WORDS",
        "keep_triggers",
    ):
        assert topic in guide
