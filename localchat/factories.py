"""Test-data factories: rows with sensible defaults, any field overridden by keyword.

    from localchat import local_session
    from localchat.factories import Factories

    with local_session() as s:
        make = Factories(s)
        conv = make.conversation(title="Trip")          # and its owner, a new user
        make.message(conversation=conv, content="Hi!")  # role "user"
        make.document(content=b"%PDF-1.7 ...", filename="plan.pdf", user=conv.user)

Every row goes through :mod:`localchat.repository`, so it is validated exactly
as the app's own calls are. Defaults are unique within the process
(``user7@example.org``), so factories also work on a store seeded by factories.
The pytest plugin exposes each method as a fixture: ``make_user``,
``make_conversation``, ``make_message``, ``make_document``, ``make_prompt``,
``make_service``, ``make_model``, ``make_knowledge_chunk``.
"""

from __future__ import annotations

import itertools
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .database import Session
from .models import (
    Conversation,
    Document,
    KnowledgeChunk,
    LLMModel,
    LLMService,
    Message,
    PromptTemplate,
    User,
)
from .repository import (
    add_message,
    create_conversation,
    create_document,
    create_document_with_file,
    create_model,
    create_prompt,
    create_service,
    create_user,
    hash_password,
    upsert_knowledge_chunk,
)

__all__ = ["Factories"]

_counters: defaultdict[str, Iterator[int]] = defaultdict(lambda: itertools.count(1))


def _next(kind: str) -> int:
    return next(_counters[kind])


class _Auto:
    """The default of a parent argument: make a new parent row."""

    def __repr__(self) -> str:
        return "AUTO"


AUTO: Any = _Auto()


class Factories:
    """Row makers bound to one session; each method's keywords are the repository's.

    ``user=``, ``conversation=`` and ``service=`` take a row (or an id); left
    out, a new parent row is made; ``user=None`` makes an anonymous conversation.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def user(self, *, password: str | None = None, **overrides: Any) -> User:
        """``create_user`` with ``email``, ``username`` and ``name`` filled in.

        ``password="..."`` stores its hash (``hash_password``), so the user can log in.
        """
        n = _next("user")
        fields: dict[str, Any] = {
            "email": f"user{n}@example.org",
            "username": f"user{n}",
            "name": f"User {n}",
        }
        if password is not None:
            fields["password_hash"] = hash_password(password)
        fields.update(overrides)
        return create_user(self.session, **fields)

    def conversation(self, *, user: Any = AUTO, **overrides: Any) -> Conversation:
        """``create_conversation`` owned by ``user`` (default: a new user), titled."""
        n = _next("conversation")
        if "user_id" not in overrides and "user_email" not in overrides:
            overrides["user_id"] = self.user() if user is AUTO else user
        overrides.setdefault("title", f"Conversation {n}")
        return create_conversation(self.session, **overrides)

    def message(
        self,
        *,
        conversation: Any = AUTO,
        role: str = "user",
        content: str | None = None,
        **overrides: Any,
    ) -> Message:
        """``add_message`` in ``conversation`` (default: a new one), under its latest message.

        ``parent_id=`` branches the tree; ``role_metadata=`` and ``model=`` pass through.
        """
        n = _next("message")
        if conversation is AUTO:
            conversation = self.conversation()
        text = f"Message {n}" if content is None else content
        return add_message(self.session, conversation, role, text, **overrides)

    def document(
        self,
        *,
        content: bytes | str | None = AUTO,
        filename: str | None = None,
        user: Any = None,
        conversation: Any = None,
        **overrides: Any,
    ) -> Document:
        """``create_document_with_file``: ``content`` stored in the store's own folder.

        ``content=None`` records metadata only (``create_document``). ``user`` and
        ``conversation`` attach it; ``tags=``, ``message_id=``... pass through.
        """
        n = _next("document")
        name = f"document-{n}.txt" if filename is None else filename
        overrides.setdefault("user_id", user)
        overrides.setdefault("conversation_id", conversation)
        if content is None:
            return create_document(self.session, name, **overrides)
        data = f"Contents of document {n}.\n" if content is AUTO else content
        raw = data.encode("utf-8") if isinstance(data, str) else data
        with tempfile.TemporaryDirectory(prefix="localchat-upload-") as folder:
            source = Path(folder) / "upload"
            source.write_bytes(raw)
            return create_document_with_file(
                self.session, source, original_filename=name, **overrides
            )

    def prompt(self, **overrides: Any) -> PromptTemplate:
        """``create_prompt`` with a unique ``key`` and content ``{"text": "Hello {name}!"}``."""
        n = _next("prompt")
        fields: dict[str, Any] = {
            "key": f"prompt-{n}",
            "name": f"Prompt {n}",
            "content": {"text": "Hello {name}!"},
        }
        fields.update(overrides)
        return create_prompt(self.session, **fields)

    def service(self, **overrides: Any) -> LLMService:
        """``create_service``: a local ``ollama`` endpoint with a unique name."""
        n = _next("service")
        fields: dict[str, Any] = {
            "name": f"service-{n}",
            "provider": "ollama",
            "base_url": "http://localhost:11434",
        }
        fields.update(overrides)
        return create_service(self.session, **fields)

    def model(self, *, service: Any = AUTO, **overrides: Any) -> LLMModel:
        """``create_model`` served by ``service`` (default: a new one), a chat model."""
        n = _next("model")
        if "service_id" not in overrides:
            overrides["service_id"] = self.service() if service is AUTO else service
        if not isinstance(overrides["service_id"], (int, str)):
            overrides["service_id"] = overrides["service_id"].id
        fields: dict[str, Any] = {"name": f"model-{n}", "context_window": 8192}
        fields.update(overrides)
        return create_model(self.session, **fields)

    def knowledge_chunk(self, **overrides: Any) -> KnowledgeChunk:
        """``upsert_knowledge_chunk`` from source ``"docs"`` with a unique external id."""
        n = _next("knowledge_chunk")
        fields: dict[str, Any] = {
            "source": "docs",
            "external_id": f"chunk-{n}",
            "title": f"Chunk {n}",
            "content": f"Text of knowledge chunk {n}.",
        }
        fields.update(overrides)
        return upsert_knowledge_chunk(self.session, **fields)
