"""The source documents' second names for localchat functions, in one place.

    from localchat.compat import create_chat_session, get_user_by_id

    from localchat import local_session
    with local_session() as s:
        chat = create_chat_session(s, title="Support")    # is create_conversation

Each name here is the very same function as its canonical name (``ALIASES``
maps one to the other). They are also importable from the modules the source
documents import them from (``localchat.repository``,
``localchat.repository.users``, ``localchat.repository.conversations``,
``localchat.repository.knowledge``, ``localchat.search``), but no ``__all__``
other than this module's lists them: new code uses the canonical names.
"""

from __future__ import annotations

from .repository.conversations import (
    create_chat_session,
    delete_chat_session,
    get_chat_session,
    update_chat_session,
)
from .repository.knowledge import search_knowledge_chunks_by_source
from .repository.users import get_user_by_id
from .search import search_knowledge

__all__ = [
    "ALIASES",
    "get_user_by_id",
    "create_chat_session",
    "get_chat_session",
    "update_chat_session",
    "delete_chat_session",
    "search_knowledge_chunks_by_source",
    "search_knowledge",
]

#: alias -> canonical name (``localchat.repository``, or ``localchat.search`` for search).
ALIASES: dict[str, str] = {
    "get_user_by_id": "get_user",
    "create_chat_session": "create_conversation",
    "get_chat_session": "get_conversation_by_id",
    "update_chat_session": "update_conversation",
    "delete_chat_session": "delete_conversation",
    "search_knowledge_chunks_by_source": "list_knowledge_chunks_by_source",
    "search_knowledge": "search_knowledge_chunks",
}
