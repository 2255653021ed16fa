"""Full-text search over messages, conversations and knowledge chunks.

    from localchat import local_session
    from localchat.repository import add_message, create_conversation
    from localchat.search import search_messages

    with local_session() as s:
        conv = create_conversation(s, title="Trip")
        add_message(s, conv.id, "user", "Which museum opens on Monday?")
        [h.message.content for h in search_messages(s, "museum")]   # one hit

The package: :mod:`~localchat.search.queries` (the search functions, ranking,
filters), :mod:`~localchat.search.index` (the FTS5 tables, query parsing,
bounds, trigger handling), :mod:`~localchat.search.snippet` (snippets and
highlights) and :mod:`~localchat.search.hits` (what a search returns). See
``docs/search.md``.
"""

from .queries import *  # noqa: F403
from .queries import __all__ as __all__
from .queries import search_knowledge as search_knowledge  # an alias (localchat.compat)
