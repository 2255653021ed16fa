"""The reference examples for users, conversations, messages and knowledge chunks run
as written against the configured store; only their import lines differ.

The blocks of one walkthrough share a namespace, as they do in the reference (a later
block uses the ``user`` or ``conv`` of an earlier one). The store is the one
``get_session()`` resolves: ``LOCALCHAT_DB_PATH`` points it at a temporary file.
"""

from __future__ import annotations

import textwrap

import pytest

from localchat import get_session
from localchat.models import Conversation, KnowledgeChunk, Message, User

MODELS = [
    """
from localchat.models import User

user = User(
    email="user@example.com",
    name="John Doe",
    external_id="auth_12345"
)
""",
    """
from localchat.models import Conversation

conversation = Conversation(
    user_id=user.id,
    title="How to use the database?",
    status="active"
)
""",
    """
from localchat.models import Message

message = Message(
    conversation_id=conversation.id,
    sender_type="user",
    content="Hello, how does the database work?",
    role_metadata={"tokens": 10}
)
""",
    """
from localchat.models import KnowledgeChunk

chunk = KnowledgeChunk(
    source="enhanced_readme",
    external_id="readme_section_1",
    title="Installation Guide",
    content="To install the project, run: pip install -r requirements.txt",
    chunk_metadata={"section_type": "installation", "module": "readme_generator"}
)
""",
]

WALKTHROUGH = [
    """
from localchat import get_session, init_db

# Initialize database (first time)
init_db()

# Use database session
with get_session() as session:
    # Your database operations here
    pass
""",
    """
from localchat.repository import create_user, get_user_by_email
from localchat import get_session

with get_session() as session:
    user = create_user(session, email="user@example.com", name="John Doe")
    retrieved = get_user_by_email(session, "user@example.com")
""",
    """
from localchat.repository import create_conversation, list_conversations_for_user

with get_session() as session:
    conv = create_conversation(session, user_id=user.id, title="Test Chat")
    user_convs = list_conversations_for_user(session, user.id, status="active")
""",
    """
from localchat.repository import add_message, list_messages_for_conversation
from localchat.repository import MessageSenderType

with get_session() as session:
    msg = add_message(
        session,
        conversation_id=conv.id,
        sender_type=MessageSenderType.USER,
        content="Hello!",
        role_metadata={"tokens": 5}
    )
    messages = list_messages_for_conversation(session, conv.id)
""",
    """
from localchat.repository import upsert_knowledge_chunk, bulk_upsert_knowledge_chunks

with get_session() as session:
    chunk = upsert_knowledge_chunk(
        session,
        source="enhanced_readme",
        external_id="section_1",
        title="Installation",
        content="Installation instructions...",
        chunk_metadata={"section_type": "installation"}
    )

    # Bulk upsert
    chunks = [
        {"source": "docs", "content": "Content 1", "external_id": "doc1"},
        {"source": "docs", "content": "Content 2", "external_id": "doc2"}
    ]
    bulk_upsert_knowledge_chunks(session, chunks)
""",
]

QUICK_START = [
    """
from localchat import init_db; init_db()
""",
    """
from localchat import get_session
from localchat.repository import create_user, create_conversation, add_message
from localchat.repository import MessageSenderType

with get_session() as session:
    user = create_user(session, email="user@example.com", name="John")
    conv = create_conversation(session, user_id=user.id, title="Chat")
    msg = add_message(
        session,
        conversation_id=conv.id,
        sender_type=MessageSenderType.USER,
        content="Hello!"
    )
""",
]


@pytest.fixture
def store_file(tmp_path, monkeypatch):
    path = tmp_path / "data" / "app.db"
    monkeypatch.setenv("LOCALCHAT_DB_PATH", str(path))
    return path


def _run(blocks):
    namespace: dict = {"__name__": "__example__"}
    for number, block in enumerate(blocks):
        exec(compile(textwrap.dedent(block), f"example block {number}", "exec"), namespace)
    return namespace


def test_model_examples_build_unsaved_rows():
    ns = _run(MODELS)
    assert (ns["user"].email, ns["user"].external_id) == ("user@example.com", "auth_12345")
    assert (ns["conversation"].title, ns["conversation"].status) == (
        "How to use the database?",
        "active",
    )
    assert (ns["message"].sender_type, ns["message"].role_metadata) == ("user", {"tokens": 10})
    assert ns["chunk"].chunk_metadata["module"] == "readme_generator"


def test_repository_walkthrough_runs_and_commits_to_the_configured_store(store_file):
    ns = _run(WALKTHROUGH)
    assert store_file.exists()
    assert ns["retrieved"].id == ns["user"].id
    assert [c.id for c in ns["user_convs"]] == [ns["conv"].id]
    assert [m.content for m in ns["messages"]] == ["Hello!"]
    with get_session():  # a new transaction sees what the examples committed
        assert User.select().count() == 1
        assert Conversation.get_by_id(ns["conv"].id).last_message == "Hello!"
        assert Message.get().role_metadata == {"tokens": 5}
        sources = sorted(c.source for c in KnowledgeChunk.select())
        assert sources == ["docs", "docs", "enhanced_readme"]


def test_quick_start_runs(store_file):
    ns = _run(QUICK_START)
    assert ns["msg"].conversation_id == ns["conv"].id
    with get_session():
        assert Message.select().count() == 1
