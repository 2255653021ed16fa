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
    users,
)
from .audit import *  # noqa: F403
from .bulk import *  # noqa: F403
from .conversations import *  # noqa: F403
from .documents import *  # noqa: F403
from .exchanges import *  # noqa: F403
from .knowledge import *  # noqa: F403
from .llm import *  # noqa: F403
from .messages import *  # noqa: F403
from .prompts import *  # noqa: F403
from .users import *  # noqa: F403

__all__ = [
    name
    for module in (
        users,
        conversations,
        messages,
        bulk,
        exchanges,
        prompts,
        llm,
        knowledge,
        audit,
        documents,
    )
    for name in module.__all__
]
