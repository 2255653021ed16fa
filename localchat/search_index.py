"""The search index, under its first import path.

    from localchat.search_index import keep_triggers   # localchat.search.index's

The code lives in :mod:`localchat.search.index` (migration 0004, frozen, names this path).
"""

from .search.index import *  # noqa: F403
from .search.index import __all__ as __all__
