"""Hostile search-box input never becomes FTS5 syntax by accident (property tests)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localchat import ValidationError
from localchat.models import Conversation
from localchat.repository import add_message, create_conversation, upsert_knowledge_chunk
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


# -- bounded work: hostile rows and queries ------------------------------------------------


@pytest.fixture
def statements(localchat_session):
    """Every SQL statement the store's connection runs while the test looks.

    FTS5's own statements inside a query (traced as "-- ...") are left out.
    """
    seen: list[str] = []
    conn = localchat_session.db.connection()
    conn.set_trace_callback(lambda sql: None if sql.startswith("--") else seen.append(sql))
    yield seen
    conn.set_trace_callback(None)


def _scratch_inserts(monkeypatch):
    """The text each search hands the snippet index, recorded."""
    from localchat import search_snippet

    handed: list[str] = []
    real = search_snippet._fill

    def spy(conn, table, rows):
        handed.extend(v for row in rows for v in row[1:])
        return real(conn, table, rows)

    monkeypatch.setattr(search_snippet, "_fill", spy)
    return handed


def test_search_functions_only_read_the_store(store_with_text, statements):
    s = store_with_text
    upsert_knowledge_chunk(s, "docs", "C++ flags", "k1", title="NEAR")
    statements.clear()
    for fn in (search_messages, search_conversations, search_knowledge):
        fn(s, "C++ NEAR")
        fn(s, "near", advanced=True)
    assert statements
    writes = [sql for sql in statements if not sql.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert writes == []


def test_store_never_runs_fts5_snippet_or_highlight(store_with_text, statements):
    s = store_with_text
    upsert_knowledge_chunk(s, "docs", "C++ flags", "k1", title="NEAR")
    for fn in (search_messages, search_conversations, search_knowledge):
        assert fn(s, "near")
    assert not [sql for sql in statements if "snippet(" in sql or "highlight(" in sql]


def test_snippet_of_a_5_mb_message_is_built_from_a_bounded_window(localchat_session, monkeypatch):
    from localchat.search_snippet import SNIPPET_SCAN, SNIPPET_WINDOW

    s = localchat_session
    conv = create_conversation(s, title="big")
    add_message(s, conv.id, "user", "walrus " * 750_000)  # 5.25 MB
    handed = _scratch_inserts(monkeypatch)
    [hit] = search_messages(s, "walrus")
    assert hit.snippet.startswith("[walrus] [walrus]") and hit.snippet.endswith("…")
    assert max(map(len, handed)) <= SNIPPET_WINDOW
    assert sum(map(len, handed)) <= SNIPPET_SCAN + SNIPPET_WINDOW


def test_huge_conversation_title_is_highlighted_from_a_bounded_window(
    localchat_session, monkeypatch
):
    from localchat.search_snippet import SNIPPET_WINDOW

    s = localchat_session
    conv = create_conversation(s, title="t")
    Conversation.update(title="walrus " * 200_000).where(Conversation.id == conv.id).execute()
    handed = _scratch_inserts(monkeypatch)
    [hit] = search_conversations(s, "walrus")
    assert hit.snippet.startswith("[walrus] [walrus]") and hit.snippet.endswith("…")
    assert len(hit.snippet) < 3 * SNIPPET_WINDOW
    assert max(map(len, handed)) <= SNIPPET_WINDOW


def test_knowledge_snippet_of_a_huge_chunk_is_bounded(localchat_session, monkeypatch):
    from localchat.search_snippet import SNIPPET_WINDOW

    s = localchat_session
    upsert_knowledge_chunk(s, "docs", "walrus " * 300_000, "big", title="Walrus")
    handed = _scratch_inserts(monkeypatch)
    [hit] = search_knowledge(s, "walrus")
    assert hit.snippet.startswith("[walrus]") and hit.snippet.endswith("…")
    assert max(map(len, handed)) <= SNIPPET_WINDOW


def test_match_deep_inside_a_long_message_is_found_and_marked(localchat_session):
    s = localchat_session
    conv = create_conversation(s, title="t")
    text = "filler words here. " * 500 + "The narwhal surfaced." + " more filler." * 500
    add_message(s, conv.id, "user", text)
    [hit] = search_messages(s, "narwhal")
    assert "[narwhal]" in hit.snippet and hit.snippet.startswith("…")
    assert hit.snippet.endswith("…") and len(hit.snippet) < 200


def test_words_far_apart_in_a_long_message_mark_the_first_one_found(localchat_session):
    s = localchat_session
    conv = create_conversation(s, title="t")
    add_message(s, conv.id, "user", "narwhal " + "filler " * 2_000 + "walrus")
    [hit] = search_messages(s, "walrus narwhal")
    assert hit.snippet.startswith("[narwhal]")


def test_match_beyond_the_scanned_part_gives_the_unmarked_start(localchat_session):
    from localchat.search_snippet import SNIPPET_SCAN

    s = localchat_session
    conv = create_conversation(s, title="t")
    add_message(s, conv.id, "user", "filler " * (SNIPPET_SCAN // 7 + 1_000) + "narwhal")
    [hit] = search_messages(s, "narwhal")
    assert hit.snippet.startswith("filler filler") and "[" not in hit.snippet
    assert hit.snippet.endswith("…")


@pytest.mark.parametrize(
    "text, query, advanced",
    [
        ("Which museums should I visit in Munich? The Deutsches Museum is worth a day.",
         "museum munich", False),
        ("word " * 100 + "the walrus and the carpenter were walking close at hand " * 8,
         "walrus carpenter", False),
        ("an exact phrase here and there, an exact phrase again", '"exact phrase"', True),
        ("one two three four five six seven eight nine ten", "NEAR(two eight, 6)", True),
    ],
)  # fmt: skip
def test_short_texts_get_exactly_fts5s_own_snippet(localchat_session, text, query, advanced):
    s = localchat_session
    conv = create_conversation(s, title="t")
    msg = add_message(s, conv.id, "user", text)
    expr = fts_query(query, advanced=advanced)
    fts5 = s.db.execute_sql(
        "SELECT snippet(message_fts, 0, '[', ']', '…', 16) FROM message_fts "
        "WHERE message_fts MATCH ? AND rowid = ?",
        (expr, msg.id),
    ).fetchone()[0]
    assert search_messages(s, query, advanced=advanced)[0].snippet == fts5


def test_many_matches_in_a_short_window_are_bounded_by_tokens(localchat_session, monkeypatch):
    from localchat.search_snippet import SNIPPET_WINDOW_TOKENS

    s = localchat_session
    conv = create_conversation(s, title="t")
    add_message(s, conv.id, "user", "a " * 5_000)
    handed = _scratch_inserts(monkeypatch)
    [hit] = search_messages(s, "a")
    assert hit.snippet.startswith("[a] [a]")
    assert max(len(t.split()) for t in handed) <= SNIPPET_WINDOW_TOKENS


# -- query bounds -----------------------------------------------------------------------


def test_query_terms_are_capped(store_with_text):
    from localchat.search_index import MAX_QUERY_TERMS

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
    from localchat.search_index import MAX_QUERY_TERMS

    query = " OR ".join(f"w{i}" for i in range(MAX_QUERY_TERMS))
    assert search_messages(store_with_text, query, advanced=True) == []


def test_query_length_is_capped(store_with_text):
    from localchat.search_index import MAX_QUERY_LENGTH

    for advanced in (False, True):
        with pytest.raises(ValidationError, match="characters"):
            search_messages(store_with_text, "x" * (MAX_QUERY_LENGTH + 1), advanced=advanced)
    assert search_messages(store_with_text, "x" * MAX_QUERY_LENGTH) == []


@pytest.mark.parametrize("query", ["a*", "t*", "c* OR n*"])
def test_short_prefix_queries_are_refused(store_with_text, query):
    with pytest.raises(ValidationError, match="prefix"):
        search_messages(store_with_text, query, advanced=True)


def test_prefix_query_of_enough_letters_works(store_with_text):
    from localchat.search_index import MIN_PREFIX

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


def test_row_too_long_to_score_ranks_after_scored_matches(localchat_session):
    from localchat.search import SCORED_WORDS

    s = localchat_session
    conv = create_conversation(s, title="t")
    Conversation.update(title="walrus " * (SCORED_WORDS + 1)).execute()
    huge = add_message(s, conv.id, "user", "walrus " * (SCORED_WORDS + 1))
    short = add_message(s, conv.id, "user", "a walrus and " + "filler " * 10)
    limit_ok = add_message(s, conv.id, "user", "walrus " * SCORED_WORDS)
    hits = search_messages(s, "walrus")
    assert [h.message.id for h in hits] == [limit_ok.id, short.id, huge.id]
    assert str(hits[-1].score) == "0.0" and hits[1].score > 0
    [conv_hit] = search_conversations(s, "walrus")
    assert conv_hit.message.id == limit_ok.id


def test_knowledge_chunk_too_long_to_score_ranks_last(localchat_session):
    from localchat.search import SCORED_WORDS

    s = localchat_session
    upsert_knowledge_chunk(s, "docs", "walrus " * (SCORED_WORDS + 1), "huge", title="walrus")
    upsert_knowledge_chunk(s, "docs", "a walrus " + "filler " * 10, "short", title="x " * 200)
    hits = search_knowledge(s, "walrus")
    assert [h.chunk.external_id for h in hits] == ["short", "huge"]
    assert str(hits[-1].score) == "0.0"


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


def test_snippet_windows_shrink_with_the_query_so_fts5_sees_few_matches(
    localchat_session, monkeypatch
):
    from localchat.search_snippet import SNIPPET_WINDOW_TOKENS

    s = localchat_session
    conv = create_conversation(s, title="t")
    add_message(s, conv.id, "user", "a " * 5_000)
    handed = _scratch_inserts(monkeypatch)
    query = " OR ".join(["a", *(f"w{i}" for i in range(31))])
    [hit] = search_messages(s, query, advanced=True)
    assert hit.snippet.startswith("[a] [a]")
    assert max(len(t.split()) for t in handed) * 32 <= SNIPPET_WINDOW_TOKENS


@pytest.mark.parametrize(
    "query", ["a OR a", "NEAR(walrus tusk) OR Walrus", '"a b" OR "A B"', "é OR e"]
)
def test_advanced_query_repeating_a_word_is_refused(store_with_text, query):
    with pytest.raises(ValidationError, match="repeats"):
        search_messages(store_with_text, query, advanced=True)


def test_conversation_title_too_long_to_score_ranks_last(localchat_session):
    from localchat.search import SCORED_WORDS

    s = localchat_session
    short = create_conversation(s, title="a walrus")
    huge = create_conversation(s, title="t")
    Conversation.update(title="walrus " * (SCORED_WORDS + 1)).where(
        Conversation.id == huge.id
    ).execute()
    hits = search_conversations(s, "walrus")
    assert [h.conversation.id for h in hits] == [short.id, huge.id]
    assert str(hits[1].score) == "0.0" and hits[0].score > 0
