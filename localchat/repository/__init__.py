"""Data-access functions for every entity, re-exported flat.

    from localchat import local_session
    from localchat.repository import add_message, create_conversation, create_user

    with local_session() as s:
        user = create_user(s, email="ada@example.org")
        conv = create_conversation(s, user_id=user.id, title="Hello")
        add_message(s, conv.id, "user", "Hi there")

Every function takes the session first, by position or as ``session=``
(``log_generation(session=s, user_id="u1", ...)``). ``get_*`` returns None when the record
is missing, ``update_*`` returns None when missing, ``delete_*`` returns a
bool. Invalid values raise ``ValidationError``, a uniqueness clash raises
``Conflict``; a failed call leaves the database exactly as it was. Listings take
any positive ``limit`` (None: every row) and any ``offset`` of 0 or more.

``__all__`` holds each function once, under its canonical name; the source
documents' second names (``get_user_by_id``, ``create_chat_session``, ...) stay
importable from here and are listed in :mod:`localchat.compat`.
"""

from __future__ import annotations

from . import (
    audit,
    bulk,
    conversations,
    documents,
    exchanges,
    knowledge,
    llm,
    messages,
    prompts,
    streaming,
    trash,
    users,
)
from .audit import *  # noqa: F403
from .bulk import *  # noqa: F403
from .conversations import *  # noqa: F403
from .conversations import (  # noqa: F401  (aliases: see localchat.compat)
    create_chat_session,
    delete_chat_session,
    get_chat_session,
    update_chat_session,
)
from .documents import *  # noqa: F403
from .exchanges import *  # noqa: F403
from .knowledge import *  # noqa: F403
from .knowledge import search_knowledge_chunks_by_source  # noqa: F401
from .llm import *  # noqa: F403
from .messages import *  # noqa: F403
from .prompts import *  # noqa: F403
from .streaming import *  # noqa: F403
from .trash import *  # noqa: F403
from .users import *  # noqa: F403
from .users import get_user_by_id  # noqa: F401

__all__ = [
    name
    for module in (
        users,
        conversations,
        messages,
        streaming,
        bulk,
        exchanges,
        prompts,
        llm,
        knowledge,
        audit,
        documents,
        trash,
    )
    for name in module.__all__
]
