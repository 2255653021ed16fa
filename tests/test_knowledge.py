"""Knowledge chunks: idempotent upserts (one and in bulk), lookups, listings, deletes."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playhouse.test_utils import count_queries

from localchat import ValidationError
from localchat.models import KnowledgeChunk
from localchat.repository import (
    bulk_upsert_knowledge_chunks,
    delete_knowledge_chunk,
    get_knowledge_chunk_by_external_id,
    get_knowledge_chunk_by_id,
    list_all_knowledge_chunks,
    search_knowledge_chunks_by_source,
    upsert_knowledge_chunk,
)


def _rows():
    return [tuple(r) for r in KnowledgeChunk.select().order_by(KnowledgeChunk.id).tuples()]


# -- upsert ------------------------------------------------------------------------


def test_upsert_stores_a_chunk_with_its_content_hash(localchat_session):
    chunk = upsert_knowledge_chunk(
        localchat_session,
        "readme",
        "pip install",
        external_id="s1",
        title="Install",
        chunk_metadata={"section_type": "installation"},
    )
    stored = get_knowledge_chunk_by_id(localchat_session, chunk.id)
    assert (stored.source, stored.external_id, stored.title) == ("readme", "s1", "Install")
    assert stored.chunk_metadata == {"section_type": "installation"}
    assert stored.content_hash == hashlib.sha256(b"pip install").hexdigest()


def test_upsert_with_the_same_external_id_updates_in_place(localchat_session):
    s = localchat_session
    first = upsert_knowledge_chunk(
        s, "docs", "v1", external_id="a", title="T", chunk_metadata={"v": 1}
    )
    second = upsert_knowledge_chunk(s, "docs", "v2", external_id="a")
    assert second.id == first.id and KnowledgeChunk.select().count() == 1
    stored = get_knowledge_chunk_by_id(s, first.id)
    assert (stored.content, stored.title, stored.chunk_metadata) == ("v2", "T", {"v": 1})
    assert stored.content_hash == hashlib.sha256(b"v2").hexdigest()
    assert stored.updated_at > first.updated_at


def test_upserting_the_same_values_twice_writes_nothing(localchat_session):
    s = localchat_session
    upsert_knowledge_chunk(s, "docs", "same", external_id="a")
    before = _rows()
    with count_queries() as q:
        upsert_knowledge_chunk(s, "docs", "same", external_id="a")
    assert _rows() == before
    assert not [r for r in q.get_queries() if r.msg[0].startswith(("UPDATE", "INSERT"))]


def test_external_ids_are_per_source(localchat_session):
    a = upsert_knowledge_chunk(localchat_session, "docs", "x", external_id="1")
    b = upsert_knowledge_chunk(localchat_session, "blog", "x", external_id="1")
    assert a.id != b.id


def test_identical_content_without_external_id_is_stored_once_per_source(localchat_session):
    s = localchat_session
    a = upsert_knowledge_chunk(s, "docs", "same text")
    b = upsert_knowledge_chunk(s, "docs", "same text", title="now titled")
    c = upsert_knowledge_chunk(s, "blog", "same text")
    assert a.id == b.id != c.id
    assert get_knowledge_chunk_by_id(s, a.id).title == "now titled"


def test_content_under_a_new_external_id_is_a_new_chunk(localchat_session):
    a = upsert_knowledge_chunk(localchat_session, "docs", "text", external_id="1")
    b = upsert_knowledge_chunk(localchat_session, "docs", "text", external_id="2")
    assert a.id != b.id


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("docs", ""), {}, "content must not be empty"),
        (("", "x"), {}, "source must not be empty"),
        ((None, "x"), {}, "source must be a string"),
        (("docs", "x"), {"chunk_metadata": {"n": float("nan")}}, "finite"),
        (("docs", "x"), {"title": "t" * 501}, "limit is 500"),
        (("docs", "x"), {"external_id": 3}, "external_id must be a string"),
    ],
)
def test_bad_chunk_is_refused(localchat_session, args, kwargs, message):
    with pytest.raises(ValidationError, match=message):
        upsert_knowledge_chunk(localchat_session, *args, **kwargs)
    assert KnowledgeChunk.select().count() == 0


# -- lookups and listings -----------------------------------------------------------


def test_get_by_external_id_with_and_without_source(localchat_session):
    s = localchat_session
    docs = upsert_knowledge_chunk(s, "docs", "d", external_id="e")
    blog = upsert_knowledge_chunk(s, "blog", "b", external_id="e")
    assert get_knowledge_chunk_by_external_id(s, "e").id == docs.id
    assert get_knowledge_chunk_by_external_id(s, "e", source="blog").id == blog.id
    assert get_knowledge_chunk_by_external_id(s, "e", source="wiki") is None
    assert get_knowledge_chunk_by_external_id(s, "missing") is None
    assert get_knowledge_chunk_by_id(s, 404) is None
    assert get_knowledge_chunk_by_id(s, str(docs.uuid)).id == docs.id


def test_listings_are_in_insertion_order_and_paginated(localchat_session):
    s = localchat_session
    for i in range(5):
        upsert_knowledge_chunk(s, "docs" if i % 2 == 0 else "blog", f"c{i}")
    assert [c.content for c in search_knowledge_chunks_by_source(s, "docs")] == ["c0", "c2", "c4"]
    assert [c.content for c in search_knowledge_chunks_by_source(s, "docs", 1, 1)] == ["c2"]
    assert search_knowledge_chunks_by_source(s, "wiki") == []
    assert [c.content for c in list_all_knowledge_chunks(s, limit=2, offset=3)] == ["c3", "c4"]
    assert list_all_knowledge_chunks(s, offset=5) == []
    with pytest.raises(ValidationError):
        list_all_knowledge_chunks(s, limit=0)
    with pytest.raises(ValidationError):
        search_knowledge_chunks_by_source(s, "docs", offset=-1)


def test_delete_reports_whether_a_chunk_was_deleted(localchat_session):
    chunk = upsert_knowledge_chunk(localchat_session, "docs", "x")
    assert delete_knowledge_chunk(localchat_session, chunk.id) is True
    assert delete_knowledge_chunk(localchat_session, chunk.id) is False


# -- bulk --------------------------------------------------------------------------


def test_bulk_upsert_returns_the_stored_chunk_for_each_input_in_order(localchat_session):
    s = localchat_session
    existing = upsert_knowledge_chunk(s, "docs", "old", external_id="doc1")
    result = bulk_upsert_knowledge_chunks(
        s,
        [
            {"source": "docs", "content": "Content 1", "external_id": "doc1"},
            {"source": "docs", "content": "Content 2", "external_id": "doc2"},
            {"source": "docs", "content": "loose"},
            {"source": "docs", "content": "loose", "title": "dup"},
        ],
    )
    assert [c.content for c in result] == ["Content 1", "Content 2", "loose", "loose"]
    assert result[0].id == existing.id and result[2].id == result[3].id
    assert result[3].title == "dup"
    assert KnowledgeChunk.select().count() == 3
    assert get_knowledge_chunk_by_id(s, existing.id).content == "Content 1"


def test_bulk_upsert_repeated_key_stores_once_with_later_values(localchat_session):
    result = bulk_upsert_knowledge_chunks(
        localchat_session,
        [
            {"source": "docs", "content": "v1", "external_id": "a", "title": "T"},
            {"source": "docs", "content": "v2", "external_id": "a"},
        ],
    )
    assert result[0].id == result[1].id
    stored = get_knowledge_chunk_by_id(localchat_session, result[0].id)
    assert (stored.content, stored.title) == ("v2", "T")


def test_bulk_loose_chunk_matching_a_new_keyed_chunk_is_that_chunk(localchat_session):
    result = bulk_upsert_knowledge_chunks(
        localchat_session,
        [
            {"source": "docs", "content": "same", "external_id": "k"},
            {"source": "docs", "content": "same"},
        ],
    )
    assert result[0].id == result[1].id and KnowledgeChunk.select().count() == 1


def test_bulk_upsert_batches_its_lookups(localchat_session):
    chunks = [{"source": "docs", "content": f"c{i}", "external_id": f"id{i}"} for i in range(1200)]
    chunks += [{"source": "docs", "content": f"loose {i}"} for i in range(300)]
    with count_queries(only_select=True) as first:
        result = bulk_upsert_knowledge_chunks(localchat_session, chunks)
    assert len({c.id for c in result}) == 1500
    # 3 batches of external ids + 1 of hashes, then 3 to read the new rows back.
    assert first.count == 7
    chunks[0]["content"] = "changed"
    with count_queries() as again:
        bulk_upsert_knowledge_chunks(localchat_session, chunks)
    writes = [r.msg[0] for r in again.get_queries() if r.msg[0].startswith(("UPDATE", "INSERT"))]
    assert len(writes) == 1 and writes[0].startswith("UPDATE")
    assert KnowledgeChunk.select().count() == 1500


@pytest.mark.parametrize(
    ("chunks", "message"),
    [
        ([{"source": "docs", "content": "ok"}, {"source": "docs"}], "chunk 1: .*missing"),
        ([{"source": "docs", "content": "ok", "body": "x"}], "chunk 0: unknown \\['body'\\]"),
        ([{"source": "docs", "content": "ok"}, "text"], "chunk 1 must be a dict"),
        (
            [{"source": "docs", "content": "ok"}, {"source": "d", "content": ""}],
            "chunk 1: content must not be empty",
        ),
        ({"source": "docs", "content": "x"}, "list of dicts"),
    ],
)
def test_bulk_upsert_checks_every_chunk_before_writing(localchat_session, chunks, message):
    with pytest.raises(ValidationError, match=message):
        bulk_upsert_knowledge_chunks(localchat_session, chunks)
    assert KnowledgeChunk.select().count() == 0


def test_bulk_upsert_of_nothing_is_nothing(localchat_session):
    assert bulk_upsert_knowledge_chunks(localchat_session, []) == []


# -- properties --------------------------------------------------------------------

_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"))
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    content=_TEXT.filter(str.strip),
    metadata=JSON,
    external_id=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
        min_size=1,
        max_size=255,
    ).filter(str.strip),
)
def test_any_content_and_metadata_round_trip(localchat_session, content, metadata, external_id):
    with localchat_session.db.atomic() as example:  # each example starts from an empty table
        chunk = upsert_knowledge_chunk(
            localchat_session, "prop", content, external_id=external_id, chunk_metadata=metadata
        )
        stored = KnowledgeChunk.get_by_id(chunk.id)
        assert (stored.content, stored.chunk_metadata, stored.external_id) == (
            content,
            metadata,
            external_id,
        )
        example.rollback()
