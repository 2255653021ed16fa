"""One canonical name per function; the source documents' second names live on as aliases.

The flat namespaces (``localchat.__all__``, ``localchat.repository.__all__``,
``localchat.search.__all__``) list each function once. Every alias is importable
from :mod:`localchat.compat` and from the module the source documents import it
from, is the very same function, and ``docs/api.md`` labels it as an alias.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections import defaultdict
from pathlib import Path

import pytest

import localchat
import localchat.repository as repo
from localchat import compat, search
from localchat.models import AuditLog

ROOT = Path(__file__).resolve().parent.parent

#: alias -> (canonical name, modules the source documents (or older localchat) import it from)
DOCUMENTED_ALIASES = {
    "get_user_by_id": ("get_user", ["localchat.repository", "localchat.repository.users"]),
    "create_chat_session": (
        "create_conversation",
        ["localchat.repository", "localchat.repository.conversations"],
    ),
    "get_chat_session": (
        "get_conversation_by_id",
        ["localchat.repository", "localchat.repository.conversations"],
    ),
    "update_chat_session": (
        "update_conversation",
        ["localchat.repository", "localchat.repository.conversations"],
    ),
    "delete_chat_session": (
        "delete_conversation",
        ["localchat.repository", "localchat.repository.conversations"],
    ),
    "search_knowledge_chunks_by_source": (
        "list_knowledge_chunks_by_source",
        ["localchat.repository", "localchat.repository.knowledge"],
    ),
    "search_knowledge": ("search_knowledge_chunks", ["localchat.search"]),
}

FLAT = {
    "localchat": localchat,
    "localchat.repository": repo,
    "localchat.search": search,
}


def _canonical(name: str):
    for module in (repo, search):
        if name in module.__all__:
            return getattr(module, name)
    raise AssertionError(f"{name} is in no __all__")


@pytest.mark.parametrize("where", sorted(FLAT))
def test_a_flat_namespace_lists_every_function_once(where):
    module = FLAT[where]
    names = defaultdict(list)
    for name in module.__all__:
        value = getattr(module, name)
        if callable(value):
            names[id(value)].append(name)
    assert [found for found in names.values() if len(found) > 1] == []


def test_compat_lists_exactly_the_aliases():
    assert sorted(n for n in compat.__all__ if n != "ALIASES") == sorted(DOCUMENTED_ALIASES)
    expected = {alias: canonical for alias, (canonical, _) in DOCUMENTED_ALIASES.items()}
    assert compat.ALIASES == expected


@pytest.mark.parametrize("alias", sorted(DOCUMENTED_ALIASES))
def test_an_alias_is_the_canonical_function_wherever_the_documents_import_it(alias):
    canonical, modules = DOCUMENTED_ALIASES[alias]
    function = _canonical(canonical)
    assert getattr(compat, alias) is function
    for name in modules:
        module = importlib.import_module(name)
        assert getattr(module, alias) is function, name
        assert alias not in getattr(module, "__all__", []), name
    assert alias not in localchat.__all__


@pytest.mark.parametrize("alias", sorted(DOCUMENTED_ALIASES))
def test_the_api_reference_labels_every_alias(alias):
    text = (ROOT / "docs" / "api.md").read_text("utf-8")
    canonical = DOCUMENTED_ALIASES[alias][0]
    assert re.search(rf"\| `{alias}` \| `{canonical}` \|", text), alias


def test_the_knowledge_listing_and_search_say_what_they_do(localchat_session):
    from localchat.repository import list_knowledge_chunks_by_source, upsert_knowledge_chunk
    from localchat.search import search_knowledge_chunks

    upsert_knowledge_chunk(localchat_session, "docs", "Reset your password here.", "pw")
    assert [c.external_id for c in list_knowledge_chunks_by_source(localchat_session, "docs")] == [
        "pw"
    ]
    hits = search_knowledge_chunks(localchat_session, "password")
    assert [h.chunk.external_id for h in hits] == ["pw"]
    assert "list_knowledge_chunks_by_source" in repo.__all__
    assert "search_knowledge_chunks" in search.__all__


def test_the_audit_log_has_no_default_model(localchat_session):
    from localchat.repository import log_generation

    assert AuditLog.model_used.default is None and AuditLog.model_used.null
    assert inspect.signature(log_generation).parameters["model_used"].default is None
    entry = log_generation(localchat_session, "u1", "summary", {"q": 1}, {"a": 2})
    assert AuditLog.get_by_id(entry.id).model_used is None


def test_no_docstring_or_reference_speaks_of_one_particular_app():
    texts = [p.read_text("utf-8") for p in (ROOT / "localchat").rglob("*.py")]
    texts += [p.read_text("utf-8") for p in (ROOT / "docs").glob("*.md")]
    found = [word for word in ("treatment", "aligner") if any(word in t for t in texts)]
    assert found == []


def test_tokens_of_entries_without_a_model_are_summed_under_none_last(localchat_session):
    from localchat.repository import log_generation, tokens_per_model_per_day

    s = localchat_session
    log_generation(s, "u1", "summary", {"q": 1}, {"a": 2}, tokens_used=5)
    log_generation(s, "u1", "summary", {"q": 1}, {"a": 2}, "zeta", tokens_used=7)
    log_generation(s, "u1", "summary", {"q": 1}, {"a": 2}, tokens_used=1)
    assert [(model, tokens) for _, model, tokens in tokens_per_model_per_day(s)] == [
        ("zeta", 7),
        (None, 6),
    ]
