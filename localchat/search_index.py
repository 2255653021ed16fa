"""The search index, under its first import path: see :mod:`localchat.search.index`.

from localchat.search_index import keep_triggers   # = localchat.search.index.keep_triggers
"""

from .search.index import *  # noqa: F403
from .search.index import __all__ as __all__
