"""Hostile search input: never FTS5 syntax by accident, never over the query bounds,
never a raw exception (any argument gives hits or a localchat error)."""

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


# -- query bounds -----------------------------------------------------------------------


def test_query_terms_are_capped(store_with_text):
    from localchat.search.index import MAX_QUERY_TERMS

    s = store_with_text
    words = [f"w{i}" for i in range(MAX_QUERY_TERMS)]
    assert search_messages(s, " ".join(words)) == []
    for fn in (search_messages, search_conversations, search_knowledge):
        with pytest.raises(ValidationError, match=f"at most {MAX_QUERY_TERMS}"):
            fn(s, " ".join([*words, "one-more"]))


@pytest.mark.parametrize(
    "query",
    [
        " OR ".join(f"w{i}" for i in range(100)),
        "NEAR(" + " ".join(f"w{i}" for i in range(100)) + ", 10)",
        "-".join(f"w{i}" for i in range(100)),  # one quoted word, 100 tokens
    ],
)
@pytest.mark.parametrize("advanced", [False, True])
def test_long_or_near_and_hyphenated_queries_are_refused(store_with_text, query, advanced):
    with pytest.raises(ValidationError, match="words"):
        search_messages(store_with_text, query, advanced=advanced)


def test_operators_do_not_count_as_query_terms(store_with_text):
    from localchat.search.index import MAX_QUERY_TERMS

    query = " OR ".join(f"w{i}" for i in range(MAX_QUERY_TERMS))
    assert search_messages(store_with_text, query, advanced=True) == []


def test_query_length_is_capped(store_with_text):
    from localchat.search.index import MAX_QUERY_LENGTH

    for advanced in (False, True):
        with pytest.raises(ValidationError, match="characters"):
            search_messages(store_with_text, "x" * (MAX_QUERY_LENGTH + 1), advanced=advanced)
    assert search_messages(store_with_text, "x" * MAX_QUERY_LENGTH) == []


@pytest.mark.parametrize("query", ["a*", "t*", "c* OR n*"])
def test_short_prefix_queries_are_refused(store_with_text, query):
    with pytest.raises(ValidationError, match="prefix"):
        search_messages(store_with_text, query, advanced=True)


def test_prefix_query_of_enough_letters_works(store_with_text):
    from localchat.search.index import MIN_PREFIX

    assert len(search_messages(store_with_text, "content"[:MIN_PREFIX] + "*", advanced=True)) == 1


# -- hostile arguments: localchat errors or valid results, never raw exceptions ---------

FUNCTIONS = [search_messages, search_conversations, search_knowledge]


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize(
    "kwargs",
    [{"markers": None}, {"markers": ("\ud800", "]")}, {"markers": ("[", "\0")},
     {"markers": ("<" * 10_000, ">")}, {"markers": "[]"}, {"markers": ("[", "]", "!")}],
)  # fmt: skip
def test_bad_markers_raise_validation_error(store_with_text, fn, kwargs):
    with pytest.raises(ValidationError, match="markers"):
        fn(store_with_text, "near", **kwargs)


@pytest.mark.parametrize("fn", [search_messages, search_conversations])
def test_huge_offset_raises_validation_error(store_with_text, fn):
    with pytest.raises(ValidationError, match="offset"):
        fn(store_with_text, "near", offset=2**70)


@pytest.mark.parametrize("fn", [search_messages, search_conversations])
def test_huge_horizon_ranks_every_match(store_with_text, fn):
    assert len(fn(store_with_text, "near", horizon=2**70)) == 1


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize("query", ["near\ud800", "\udfff near \0", "ne\0ar \ud83d"])
def test_lone_surrogates_and_nul_in_a_plain_query_are_ignored(store_with_text, fn, query):
    assert isinstance(fn(store_with_text, query), list)


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize("query", ["near\ud800", "near\0"])
def test_lone_surrogates_and_nul_in_an_advanced_query_raise(store_with_text, fn, query):
    with pytest.raises(ValidationError):
        fn(store_with_text, query, advanced=True)


@pytest.mark.parametrize("source", ["docs\ud800", 5, "a\0b"])
def test_bad_knowledge_source_raises_validation_error(store_with_text, source):
    with pytest.raises(ValidationError, match="source"):
        search_knowledge(store_with_text, "near", source=source)


_ints = st.one_of(st.integers(), st.sampled_from([2**63 - 1, 2**63, 2**70, -(2**70)]))
_texts = st.text(alphabet=st.characters(codec=None, min_codepoint=0), max_size=12)
_anything = st.one_of(st.none(), _ints, _texts, st.booleans(), st.floats())
_arguments = st.fixed_dictionaries(
    {},
    optional={
        "limit": _ints,
        "offset": _ints,
        "horizon": st.one_of(st.none(), _ints),
        "markers": st.one_of(_anything, st.tuples(_texts, _texts), st.lists(_texts)),
        "advanced": st.booleans(),
        "user_id": _anything,
        "conversation_id": _anything,
        "role": _anything,
        "status": _anything,
        "source": _anything,
    },
)
_ACCEPTS = {
    search_messages: {"limit", "offset", "horizon", "markers", "advanced", "user_id",
                      "conversation_id", "role"},
    search_conversations: {"limit", "offset", "horizon", "markers", "advanced", "user_id",
                           "status"},
    search_knowledge: {"limit", "markers", "advanced", "source"},
}  # fmt: skip


@_SETTINGS
@given(query=st.one_of(_texts, hostile), arguments=_arguments)
def test_any_arguments_give_hits_or_a_localchat_error(store_with_text, query, arguments):
    from localchat.errors import LocalchatError

    for fn, accepted in _ACCEPTS.items():
        kwargs = {k: v for k, v in arguments.items() if k in accepted}
        try:
            assert isinstance(fn(store_with_text, query, **kwargs), list)
        except LocalchatError:
            pass


def test_a_word_repeated_in_the_query_is_searched_once():
    assert fts_query("Walrus walrus WALRUS tusk walrus wälrus") == '"Walrus" "tusk"'


@pytest.mark.parametrize(
    "query", ["a OR a", "NEAR(walrus tusk) OR Walrus", '"a b" OR "A B"', "é OR e"]
)
def test_advanced_query_repeating_a_word_is_refused(store_with_text, query):
    with pytest.raises(ValidationError, match="repeats"):
        search_messages(store_with_text, query, advanced=True)
