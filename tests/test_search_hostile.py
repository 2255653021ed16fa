"""Hostile search-box input never becomes FTS5 syntax by accident (property tests)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localchat import ValidationError
from localchat.repository import add_message, create_conversation
from localchat.search import fts_query, search_conversations, search_knowledge, search_messages

# Pieces of FTS5 syntax, and text that breaks naive quoting.
SYNTAX = [
    '"', '""', "'", "-", "*", ":", "^", "+", "(", ")", "{", "}", "NEAR", "NEAR(", "AND",
    "OR", "NOT", "content:", "title:", "\0", "😀", "🏳️‍🌈", "\\", "--", "東京", "ß", "\u0301",
]  # fmt: skip

hostile = st.lists(
    st.one_of(st.sampled_from(SYNTAX), st.text(max_size=8)), min_size=0, max_size=12
).map(lambda parts: " ".join(parts) if len(parts) % 2 else "".join(parts))


@pytest.fixture
def store_with_text(localchat_session):
    s = localchat_session
    conv = create_conversation(s, title='NEAR "quoted" (title)')
    add_message(s, conv.id, "user", 'C++ -O2 "NEAR" content: title: AND OR NOT 東京 ß 😀')
    return s


_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(query=hostile)
def test_plain_queries_never_raise(store_with_text, query):
    s = store_with_text
    for fn in (search_messages, search_conversations, search_knowledge):
        assert isinstance(fn(s, query), list)


@_SETTINGS
@given(query=hostile)
def test_plain_query_matches_text_containing_all_its_words(store_with_text, query):
    """Any query built from the stored message's own words finds that message."""
    words = query.split()
    stored = 'C++ -O2 "NEAR" content: title: AND OR NOT 東京 ß 😀'.split()
    query = " ".join(w for w in words if w in stored)
    hits = search_messages(store_with_text, query)
    assert len(hits) == (1 if fts_query(query) else 0)


@_SETTINGS
@given(query=hostile)
def test_advanced_queries_either_work_or_raise_validation_error(store_with_text, query):
    try:
        result = search_messages(store_with_text, query, advanced=True)
    except ValidationError:
        return
    assert isinstance(result, list)
