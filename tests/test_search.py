"""Full-text search: ranking, filters, snippets, freshness, languages, errors, CLI."""

from __future__ import annotations

import datetime as dt
import json

import peewee
import pytest

from localchat import ValidationError
from localchat.cli import main
from localchat.errors import Unsupported
from localchat.models import Conversation, KnowledgeChunk, Message
from localchat.repository import (
    add_message,
    create_conversation,
    create_user,
    delete_conversation,
    delete_message,
    update_conversation,
    upsert_knowledge_chunk,
)
from localchat.search import (
    fts_query,
    rebuild_search_index,
    search_conversations,
    search_knowledge,
    search_messages,
)


@pytest.fixture
def chats(localchat_session):
    """Two users; ada has two conversations, bob one."""
    s = localchat_session
    ada, bob = create_user(s, email="ada@example.org"), create_user(s, email="bob@example.org")
    trip = create_conversation(s, user_id=ada.id, title="Trip to München")
    add_message(s, trip.id, "user", "Which museums should I visit in Munich?")
    add_message(
        s, trip.id, "assistant", "The Deutsches Museum is worth a whole day of running around."
    )
    code = create_conversation(s, user_id=ada.id, title="Compiler flags")
    add_message(s, code.id, "user", "What does gcc -O2 do to my C++ loop?")
    add_message(s, code.id, "assistant", "It unrolls and vectorises; the museum of flags is long.")
    other = create_conversation(s, user_id=bob.id, title="Museum night")
    add_message(s, other.id, "user", "Is the museum open late on Thursday?")
    return {"s": s, "ada": ada, "bob": bob, "trip": trip, "code": code, "other": other}


def _contents(hits):
    return [h.message.content for h in hits]


def test_hits_carry_message_conversation_snippet_and_score(chats):
    hits = search_messages(chats["s"], "deutsches")
    assert len(hits) == 1
    hit = hits[0]
    assert isinstance(hit.message, Message) and hit.conversation.id == chats["trip"].id
    assert "[Deutsches]" in hit.snippet
    assert hit.score > 0


def test_more_relevant_message_ranks_first(localchat_session):
    s = localchat_session
    conv = create_conversation(s, title="t")
    add_message(s, conv.id, "user", "rust " + "filler " * 40)
    add_message(s, conv.id, "user", "rust rust, why rust?")
    add_message(s, conv.id, "user", "python only")
    hits = search_messages(s, "rust")
    assert _contents(hits)[0] == "rust rust, why rust?"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_every_word_must_match_in_any_order_case_and_accent(chats):
    assert _contents(search_messages(chats["s"], "MUSEUM deutsches")) == [
        "The Deutsches Museum is worth a whole day of running around."
    ]
    assert search_messages(chats["s"], "museum zebra") == []


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({"user_id": "bob"}, {"Is the museum open late on Thursday?"}),
        ({"conversation_id": "code"}, {"It unrolls and vectorises; the museum of flags is long."}),
        ({"role": "user"}, {
            "Which museums should I visit in Munich?", "Is the museum open late on Thursday?",
        }),
        ({"user_id": "ada", "role": "assistant"}, {
            "The Deutsches Museum is worth a whole day of running around.",
            "It unrolls and vectorises; the museum of flags is long.",
        }),
    ],
)  # fmt: skip
def test_filters_narrow_the_hits(chats, filters, expected):
    resolved = {k: (chats[v] if k != "role" else v) for k, v in filters.items()}
    assert set(_contents(search_messages(chats["s"], "museum", **resolved))) == expected


def test_filters_accept_uuids_and_unknown_ones_find_nothing(chats):
    s, unknown = chats["s"], "00000000-0000-0000-0000-000000000000"
    assert len(search_messages(s, "museum", user_id=str(chats["bob"].uuid))) == 1
    assert search_messages(s, "museum", user_id=unknown) == []
    assert search_messages(s, "museum", conversation_id=unknown) == []
    assert search_conversations(s, "museum", user_id=unknown) == []


def test_since_is_inclusive_and_until_exclusive(localchat_session):
    s = localchat_session
    conv = create_conversation(s, title="t")
    days = [dt.datetime(2025, 1, d, tzinfo=dt.timezone.utc) for d in (1, 2, 3)]
    for day in days:
        Message.create(conversation=conv, role="user", content=f"lamp {day.day}", created_at=day)
    found = search_messages(s, "lamp", since=days[1], until=days[2])
    assert _contents(found) == ["lamp 2"]


def test_limit_and_offset_page_through_hits(localchat_session):
    s = localchat_session
    conv = create_conversation(s, title="t")
    for i in range(7):
        add_message(s, conv.id, "user", f"kettle number {i}")
    pages = [search_messages(s, "kettle", limit=3, offset=o) for o in (0, 3, 6)]
    ids = [h.message.id for page in pages for h in page]
    assert [len(p) for p in pages] == [3, 3, 1] and len(set(ids)) == 7


@pytest.mark.parametrize(
    "kwargs",
    [{"limit": 0}, {"offset": -1}, {"limit": "5"}, {"role": "robot"}, {"since": "2025-01-01"},
     {"horizon": 0}, {"markers": ("<b>",)}],
)  # fmt: skip
def test_bad_arguments_raise_validation_error(chats, kwargs):
    with pytest.raises(ValidationError):
        search_messages(chats["s"], "museum", **kwargs)


def test_new_changed_and_deleted_messages_are_seen_at_once(localchat_session):
    s = localchat_session
    conv = create_conversation(s, title="t")
    msg = add_message(s, conv.id, "user", "the walrus sings")
    assert _contents(search_messages(s, "walrus")) == ["the walrus sings"]
    Message.update(content="the narwhal sings").where(Message.id == msg.id).execute()
    assert search_messages(s, "walrus") == []
    assert _contents(search_messages(s, "narwhal")) == ["the narwhal sings"]
    delete_message(s, msg.id)
    assert search_messages(s, "narwhal") == []


def test_deleting_a_conversation_removes_its_messages_from_the_index(chats):
    s = chats["s"]
    delete_conversation(s, chats["other"].id)
    assert search_messages(s, "thursday") == []
    assert all(h.conversation.id != chats["other"].id for h in search_conversations(s, "museum"))


def test_conversation_search_gives_one_hit_per_conversation(chats):
    hits = search_conversations(chats["s"], "museum")
    ids = [h.conversation.id for h in hits]
    assert sorted(ids) == sorted({chats["trip"].id, chats["code"].id, chats["other"].id})


def test_conversation_found_by_title_alone_has_highlighted_title(chats):
    hits = search_conversations(chats["s"], "compiler")
    assert [h.conversation.id for h in hits] == [chats["code"].id]
    assert hits[0].message is None and hits[0].snippet == "[Compiler] flags"


def test_conversation_found_by_a_message_names_that_message(chats):
    hits = search_conversations(chats["s"], "vectorises")
    assert hits[0].message.content.startswith("It unrolls") and "[vectorises]" in hits[0].snippet


def test_conversation_search_filters_by_user_and_status(chats):
    s = chats["s"]
    assert [h.conversation.id for h in search_conversations(s, "museum", user_id=chats["bob"])] == [
        chats["other"].id
    ]
    update_conversation(s, chats["other"].id, status="archived")
    found = search_conversations(s, "museum", status="archived")
    assert [h.conversation.id for h in found] == [chats["other"].id]


def test_renamed_conversation_is_found_by_its_new_title(chats):
    s = chats["s"]
    update_conversation(s, chats["code"].id, title="Optimiser settings")
    assert search_conversations(s, "compiler") == []
    assert [h.conversation.id for h in search_conversations(s, "optimiser")] == [chats["code"].id]


def test_knowledge_search_ranks_title_matches_and_filters_by_source(localchat_session):
    s = localchat_session
    upsert_knowledge_chunk(s, "docs", "Open settings, then security.", "a", title="Password reset")
    upsert_knowledge_chunk(
        s, "docs", "Your password is never stored in clear.", "b", title="Storage"
    )
    upsert_knowledge_chunk(s, "faq", "A password manager helps.", "c", title="Tips")
    hits = search_knowledge(s, "password")
    assert hits[0].chunk.external_id == "a" and len(hits) == 3
    assert [h.chunk.source for h in search_knowledge(s, "password", source="faq")] == ["faq"]
    assert len(search_knowledge(s, "password", limit=1)) == 1


def test_updated_knowledge_chunk_is_reindexed(localchat_session):
    s = localchat_session
    upsert_knowledge_chunk(s, "docs", "old text about pelicans", "a")
    upsert_knowledge_chunk(s, "docs", "new text about flamingos", "a")
    assert search_knowledge(s, "pelicans") == []
    assert [h.chunk.content for h in search_knowledge(s, "flamingos")] == [
        "new text about flamingos"
    ]
    KnowledgeChunk.delete().execute()
    assert search_knowledge(s, "flamingos") == []


# -- languages: what the tokenizer (porter unicode61 remove_diacritics 2) does -------------

LANGUAGE_CASES = [
    ("Wir haben die Häuser in München gesehen", "hauser munchen", True),  # German, folded
    ("Die Straße war voller Menschen", "straße", True),  # ß stays ß, exact match
    ("Le garçon était à l'école, très content", "garcon ecole", True),  # French accents
    ("Élève", "eleve", True),  # capital with accent
    ("Привет, как дела?", "ПРИВЕТ", True),  # Cyrillic case folding
    ("Ёлка стоит в комнате", "елка", False),  # ё is a letter of its own, not folded
    ("I was running all morning", "run", True),  # English stemming
    ("東京タワーに行きました", "東京", False),  # CJK: a run of ideographs is one token
    ("東京 タワー", "東京", True),  # CJK separated by a space: found
    ("ça coûte 5 €", "cout", True),  # English suffix rules also fold some French forms
    ("I 😀 emoji", "😀", False),  # emoji are not indexed
]


@pytest.mark.parametrize("text, query, found", LANGUAGE_CASES)
def test_tokenizer_behaviour_on_real_text(localchat_session, text, query, found):
    s = localchat_session
    conv = create_conversation(s, title="t")
    add_message(s, conv.id, "user", text)
    assert bool(search_messages(s, query)) is found


def test_cjk_prefix_search_needs_advanced_syntax(localchat_session):
    s = localchat_session
    conv = create_conversation(s, title="t")
    add_message(s, conv.id, "user", "東京タワーに行きました")
    assert len(search_messages(s, "東京*", advanced=True)) == 1


# -- query syntax -----------------------------------------------------------------------


def test_plain_query_quotes_every_word_and_drops_wordless_ones():
    assert fts_query('C++ -O2 "NEAR" (x: 😀 --') == '"C++" "-O2" """NEAR""" "(x:"'
    assert fts_query("  \0 😀 ") == ""


def test_punctuation_is_text_not_syntax(chats):
    assert _contents(search_messages(chats["s"], "gcc -O2 C++")) == [
        "What does gcc -O2 do to my C++ loop?"
    ]


def test_empty_or_wordless_query_finds_nothing(chats):
    assert search_messages(chats["s"], "   ") == []
    assert search_conversations(chats["s"], "😀") == []
    assert search_knowledge(chats["s"], "--") == []


def test_advanced_query_uses_fts5_syntax(chats):
    s = chats["s"]
    found = _contents(search_messages(s, "thursday OR deutsches", advanced=True))
    assert len(found) == 2
    assert (
        search_messages(s, '"museum open"', advanced=True)[0].conversation.id == chats["other"].id
    )


@pytest.mark.parametrize(
    "query", ["museum AND (", '"unbalanced', "nosuchcolumn: x", "NEAR(", "AND"]
)
def test_malformed_advanced_query_raises_validation_error(chats, query):
    with pytest.raises(ValidationError, match="not valid FTS5 syntax"):
        search_messages(chats["s"], query, advanced=True)


def test_advanced_query_with_nul_is_refused(chats):
    with pytest.raises(ValidationError, match="NUL"):
        search_messages(chats["s"], "a\0b", advanced=True)


def test_failed_advanced_query_leaves_the_session_usable(chats):
    s = chats["s"]
    with pytest.raises(ValidationError):
        search_messages(s, "museum AND (", advanced=True)
    assert search_messages(s, "museum")


# -- horizon: very common words are ranked among their newest matches -------------------


def test_common_word_is_ranked_among_its_newest_matches(localchat_session):
    s = localchat_session
    conv = create_conversation(s, title="t")
    best = add_message(s, conv.id, "user", "owl owl owl")
    for i in range(5):
        add_message(s, conv.id, "user", f"owl and a long tail of other words number {i}")
    assert search_messages(s, "owl")[0].message.id == best.id
    ranked = search_messages(s, "owl", horizon=3)
    assert best.id not in [h.message.id for h in ranked] and len(ranked) == 3
    assert search_messages(s, "owl", horizon=None)[0].message.id == best.id


def test_rebuild_search_index_repairs_a_stale_index(localchat_session):
    s = localchat_session
    conv = create_conversation(s, title="t")
    s.db.execute_sql("DROP TRIGGER message_fts_ai")
    add_message(s, conv.id, "user", "invisible heron")
    assert search_messages(s, "heron") == []
    assert rebuild_search_index(s) == ["message_fts", "conversation_fts", "knowledge_chunk_fts"]
    assert len(search_messages(s, "heron")) == 1


# -- backends ---------------------------------------------------------------------------


class _PgSession:
    db = peewee.PostgresqlDatabase("never_connected", autoconnect=False)


@pytest.mark.parametrize("fn", [search_messages, search_conversations, search_knowledge])
def test_postgresql_store_raises_unsupported_without_connecting(fn):
    with pytest.raises(Unsupported, match="SQLite FTS5"):
        fn(_PgSession(), "museum")


def test_store_without_the_index_raises_unsupported(localchat_session):
    s = localchat_session
    s.db.execute_sql("DROP TABLE message_fts")
    with pytest.raises(Unsupported, match="0002_full_text_search"):
        search_messages(s, "anything")


# -- CLI ----------------------------------------------------------------------------------


def _seed(path):
    from localchat import open_store

    with open_store(path).session() as s:
        user = create_user(s, email="ada@example.org")
        conv = create_conversation(s, user_id=user.id, title="Birds")
        add_message(s, conv.id, "user", "Where do puffins nest?")
        other = create_conversation(s, title="More birds")
        add_message(s, other.id, "user", "Puffins again")
        return user.id, conv.id


def test_cli_search_prints_hits_and_json(db_path, capsys):
    user_id, conv_id = _seed(db_path)
    assert main(["search", "puffins", "--db", str(db_path)]) == 0
    out = capsys.readouterr().out
    assert "Birds #1 user: Where do [puffins] nest?" in out and "[Puffins] again" in out
    args = ["search", "puffins", "--db", str(db_path), "--user", str(user_id), "--json"]
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["conversation"]["id"] for r in rows] == [conv_id]


def test_cli_search_reports_a_malformed_advanced_query(db_path, capsys):
    _seed(db_path)
    assert main(["search", "puffins AND (", "--advanced", "--db", str(db_path)]) == 2
    assert "not valid FTS5 syntax" in capsys.readouterr().err


def test_cli_search_does_not_create_the_store(db_path, capsys):
    assert main(["search", "anything", "--db", str(db_path)]) == 0
    assert not db_path.exists()


def test_conversation_hit_serialises_to_json(chats):
    hit = search_conversations(chats["s"], "compiler")[0]
    assert json.loads(json.dumps(hit.to_dict()))["conversation"]["title"] == "Compiler flags"
    assert isinstance(hit.conversation, Conversation)
