"""The models as they were before migration 0008, for tests that write to an older store.

Also hides what later migrations added (0009's ``trashed_at``): a store below
0008 lacks those columns too.

with models_before_0008():
    add_message(s, conv.id, "user", "written at 0005")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from localchat.fastsql import clear_caches
from localchat.models import Conversation, Document, Message

#: The columns migration 0008 (and the later ones) added, per model.
ADDED_BY_0008 = {
    Conversation: ("current_leaf_id", "pinned", "tags", "metadata", "trashed_at"),
    Message: ("status", "error"),
    Document: ("trashed_at",),
}


@contextlib.contextmanager
def models_before_0008() -> Iterator[None]:
    """Hide the columns 0008 added from the models (and the fixed-SQL caches) meanwhile."""
    hidden = []
    for model, names in ADDED_BY_0008.items():
        for name in names:
            hidden.append((model, name, model._meta.fields[name]))
            model._meta.remove_field(name)
    clear_caches()
    try:
        yield
    finally:
        for model, name, field in hidden:
            model._meta.add_field(name, field)
        clear_caches()
