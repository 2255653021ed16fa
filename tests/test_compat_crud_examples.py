# ruff: noqa: E501  (the examples are quoted verbatim)
"""The reference examples for users, web sessions, chat sessions, exchanges, prompts,
documents and the LLM registry run as written; only their import lines differ, and
the user example's password hash: the reference passes the literal ``"hashed_pw"``,
which localchat refuses (only a hash made by ``hash_password`` is stored).

Each block runs with a ``session`` and, where the block expects one from an earlier
block, a ``user`` / ``chat_sess`` made beforehand.
"""

from __future__ import annotations

import textwrap
import warnings

import pytest

from localchat.repository import create_chat_session, create_user

USER = """
from localchat.repository import users as user_ops

user = user_ops.create_user(session, "user@example.com", user_ops.hash_password("pw"))
fetched = user_ops.get_user(session, user.id)
user_ops.update_user(session, user.id, email="new@example.com")
user_ops.delete_user(session, user.id)
"""

WEB_SESSION = """
from datetime import datetime, timedelta
from localchat.repository import users as user_ops

sess = user_ops.create_web_session(
    session,
    session_id="abc123",
    user_id=user.id,
    issued_at=datetime.utcnow(),
    expires_at=datetime.utcnow() + timedelta(days=1)
)
fetched = user_ops.get_web_session(session, "abc123")
user_ops.update_web_session(session, "abc123", ip_net="192.168.0.0/24")
user_ops.delete_web_session(session, "abc123")
"""

CHAT_SESSION = """
from localchat.repository import conversations as chat_ops

chat_sess = chat_ops.create_chat_session(session, user.id)
fetched = chat_ops.get_chat_session(session, chat_sess.id)
chat_ops.update_chat_session(session, chat_sess.id, title="New Title")
chat_ops.delete_chat_session(session, chat_sess.id)
"""

CHAT_EXCHANGE = """
import localchat.repository as chat_ops

exch = chat_ops.add_chat_exchange(
    session,
    chat_sess.id,
    user_message="Hello",
    rag_prompt="Prompt",
    assistant_message="Hi!",
    html_response="<p>Hi!</p>",
    context_used=[{"info": "test"}]
)
fetched = chat_ops.get_chat_exchange(session, exch.id)
all_exchanges = chat_ops.list_chat_exchanges(session, chat_sess.id)
chat_ops.update_chat_exchange(session, exch.id, assistant_message="Updated message")
chat_ops.delete_chat_exchange(session, exch.id)
"""

PROMPT = """
from localchat.repository import prompts as prompt_ops

prompt = prompt_ops.create_prompt(session, "p1", "Greeting", {"text": "Hello {name}"})
fetched = prompt_ops.get_prompt(session, "p1")
prompt_ops.update_prompt(session, "p1", name="New Greeting")
prompt_ops.delete_prompt(session, "p1")
"""

DOCUMENT = """
from localchat.repository import documents as document_ops

# Create directly
doc = document_ops.create_document(
    session,
    filename="original.txt",
    path="/path/to/original.txt",
    tags=["tag1"]
)

# Or create with file storage (recommended)
from pathlib import Path
tmp_file = Path("temp.txt")
tmp_file.write_text("Hello world")

doc = document_ops.create_document_with_file(
    session,
    src_path=tmp_file,
    original_filename="original.txt",
    storage_dir="documents",  # Will be created if missing
    tags=["tag1"]
)

fetched = document_ops.get_document(session, doc.id)
document_ops.update_document(session, doc.id, tags=["updated"])
document_ops.delete_document(session, doc.id, delete_file=True)
"""

LLM = """
from localchat.repository import llm as llm_ops

svc = llm_ops.create_service(session, "openai-prod", "openai", base_url="https://api.openai.com/v1", auth_ref="openai_key")
model = llm_ops.create_model(session, svc.id, "gpt-4o", modality="chat", supports_tools=True)
services = llm_ops.list_services(session)

from localchat import InvocationParams
payload = InvocationParams(
    service_id=svc.id,
    model_name="gpt-4o",
    messages=[{"role": "user", "content": "Hello"}],
    temperature=0.5,
)
"""


def _run(code: str, **names):
    namespace = dict(names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the examples use utcnow()
        exec(compile(textwrap.dedent(code), "<example>", "exec"), namespace)
    return namespace


def test_user_example(localchat_session):
    ns = _run(USER, session=localchat_session)
    assert ns["fetched"].email == "user@example.com"
    from localchat.repository import get_user

    assert get_user(localchat_session, ns["user"].id) is None  # deleted at the end


def test_web_session_example(localchat_session):
    user = create_user(localchat_session, "ada@example.org")
    ns = _run(WEB_SESSION, session=localchat_session, user=user)
    assert ns["fetched"] is not None and ns["fetched"].user_id == user.id
    from localchat.repository import get_web_session

    assert get_web_session(localchat_session, "abc123") is None


def test_chat_session_example(localchat_session):
    user = create_user(localchat_session, "ada@example.org")
    ns = _run(CHAT_SESSION, session=localchat_session, user=user)
    assert ns["fetched"].id == ns["chat_sess"].id
    from localchat.repository import get_chat_session

    assert get_chat_session(localchat_session, ns["chat_sess"].id) is None


def test_chat_exchange_example(localchat_session):
    user = create_user(localchat_session, "ada@example.org")
    chat_sess = create_chat_session(localchat_session, user.id)
    ns = _run(CHAT_EXCHANGE, session=localchat_session, chat_sess=chat_sess)
    assert ns["fetched"].assistant_message == "Hi!"
    assert ns["fetched"].context_used == [{"info": "test"}]
    assert [e.id for e in ns["all_exchanges"]] == [ns["exch"].id]
    from localchat.repository import list_chat_exchanges

    assert list_chat_exchanges(localchat_session, chat_sess.id) == []


def test_prompt_example(localchat_session):
    ns = _run(PROMPT, session=localchat_session)
    assert ns["fetched"].content == {"text": "Hello {name}"}
    from localchat.repository import get_prompt

    assert get_prompt(localchat_session, "p1") is None


def test_document_example(tmp_path, monkeypatch):
    from localchat import local_session

    monkeypatch.chdir(tmp_path)
    with local_session(tmp_path / "store" / "chat.db") as session:
        ns = _run(DOCUMENT, session=session)
        assert ns["fetched"].filename == "original.txt"
    assert (tmp_path / "temp.txt").read_text() == "Hello world"  # the original is kept
    # the stored copy is removed once the deletion has committed
    stored = [p for p in (tmp_path / "documents").iterdir() if not p.name.startswith(".")]
    assert stored == []


def test_llm_registry_example(localchat_session):
    ns = _run(LLM, session=localchat_session)
    assert [s.name for s in ns["services"]] == ["openai-prod"]
    assert ns["payload"].temperature == 0.5


@pytest.mark.parametrize("temperature", [-0.1, 2.5])
def test_llm_example_rejects_out_of_range_temperature(localchat_session, temperature):
    from localchat import InvocationParams, ValidationError

    with pytest.raises(ValidationError, match="temperature"):
        InvocationParams(
            service_id=1,
            model_name="gpt-4o",
            messages=[{"role": "user", "content": "Hello"}],
            temperature=temperature,
        )
