"""Bounded search work: snippets from bounded windows, rows too long to score, reads only.

No timing is asserted: each test checks what bounds the work (how much text
FTS5 is handed, which statements reach the store, how rows are ranked).
"""

from __future__ import annotations

import pytest

from localchat.models import Conversation
from localchat.repository import add_message, create_conversation, upsert_knowledge_chunk
from localchat.search import fts_query, search_conversations, search_knowledge, search_messages


@pytest.fixture
def searchable(localchat_session):
    """A message, its conversation's title and a knowledge chunk, all holding "near"."""
    s = localchat_session
    add_message(s, create_conversation(s, title="Flags near").id, "user", "C++ -O2 NEAR far")
    upsert_knowledge_chunk(s, "docs", "C++ flags", "k1", title="NEAR")
    return s


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
    from localchat.search import snippet as search_snippet

    handed: list[str] = []
    real = search_snippet._fill

    def spy(conn, table, rows):
        handed.extend(v for row in rows for v in row[1:])
        return real(conn, table, rows)

    monkeypatch.setattr(search_snippet, "_fill", spy)
    return handed


def test_search_functions_only_read_the_store(searchable, statements):
    s = searchable
    statements.clear()
    for fn in (search_messages, search_conversations, search_knowledge):
        fn(s, "C++ NEAR")
        fn(s, "near", advanced=True)
    assert statements
    writes = [sql for sql in statements if not sql.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert writes == []


def test_store_never_runs_fts5_snippet_or_highlight(searchable, statements):
    s = searchable
    for fn in (search_messages, search_conversations, search_knowledge):
        assert fn(s, "near")
    assert not [sql for sql in statements if "snippet(" in sql or "highlight(" in sql]


def test_snippet_of_a_5_mb_message_is_built_from_a_bounded_window(localchat_session, monkeypatch):
    from localchat.search.snippet import SNIPPET_SCAN, SNIPPET_WINDOW

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
    from localchat.search.snippet import SNIPPET_WINDOW

    s = localchat_session
    conv = create_conversation(s, title="t")
    Conversation.update(title="walrus " * 200_000).where(Conversation.id == conv.id).execute()
    handed = _scratch_inserts(monkeypatch)
    [hit] = search_conversations(s, "walrus")
    assert hit.snippet.startswith("[walrus] [walrus]") and hit.snippet.endswith("…")
    assert len(hit.snippet) < 3 * SNIPPET_WINDOW
    assert max(map(len, handed)) <= SNIPPET_WINDOW


def test_knowledge_snippet_of_a_huge_chunk_is_bounded(localchat_session, monkeypatch):
    from localchat.search.snippet import SNIPPET_WINDOW

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
    from localchat.search.snippet import SNIPPET_SCAN

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
    from localchat.search.snippet import SNIPPET_WINDOW_TOKENS

    s = localchat_session
    conv = create_conversation(s, title="t")
    add_message(s, conv.id, "user", "a " * 5_000)
    handed = _scratch_inserts(monkeypatch)
    [hit] = search_messages(s, "a")
    assert hit.snippet.startswith("[a] [a]")
    assert max(len(t.split()) for t in handed) <= SNIPPET_WINDOW_TOKENS


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


def test_snippet_windows_shrink_with_the_query_so_fts5_sees_few_matches(
    localchat_session, monkeypatch
):
    from localchat.search.snippet import SNIPPET_WINDOW_TOKENS

    s = localchat_session
    conv = create_conversation(s, title="t")
    add_message(s, conv.id, "user", "a " * 5_000)
    handed = _scratch_inserts(monkeypatch)
    query = " OR ".join(["a", *(f"w{i}" for i in range(31))])
    [hit] = search_messages(s, query, advanced=True)
    assert hit.snippet.startswith("[a] [a]")
    assert max(len(t.split()) for t in handed) * 32 <= SNIPPET_WINDOW_TOKENS


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


def test_unmarked_start_begins_at_the_first_word(localchat_session):
    from localchat.search.snippet import SNIPPET_SCAN

    s = localchat_session
    conv = create_conversation(s, title="t")
    add_message(s, conv.id, "user", "\n" * 10 + "intro words " + "x " * SNIPPET_SCAN + "narwhal")
    [hit] = search_messages(s, "narwhal")
    assert hit.snippet.startswith("intro words x") and hit.snippet.endswith("…")
