"""localchat: the storage layer for local LLM chat clients.

    from localchat import local_session
    from localchat.repository import add_message, create_conversation, create_user

    with local_session() as s:                       # a fresh temporary store
        user = create_user(s, email="ada@example.org", name="Ada")
        conv = create_conversation(s, user_id=user.id, title="First chat")
        add_message(s, conv.id, "user", "Hello!")

``init_db()`` creates or upgrades the per-user store in the platform data
directory; ``get_session()`` opens a transaction on it.
"""

from __future__ import annotations

from .database import (
    Session,
    Store,
    close_all,
    drop_db,
    get_session,
    init_db,
    local_session,
    open_store,
    reset_db,
)
from .errors import (
    ArchiveError,
    ConfigError,
    Conflict,
    FileStoreError,
    ForeignDatabase,
    LocalchatError,
    MigrationError,
    ModelError,
    NoSession,
    NotFound,
    OutsideStore,
    ReadOnlySession,
    SchemaTooNew,
    SessionClosed,
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreReadOnly,
    Unsupported,
    ValidationError,
)
from .repository.llm import InvocationParams

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "init_db",
    "drop_db",
    "reset_db",
    "get_session",
    "local_session",
    "open_store",
    "close_all",
    "Store",
    "Session",
    "LocalchatError",
    "ConfigError",
    "NotFound",
    "ValidationError",
    "Conflict",
    "MigrationError",
    "SchemaTooNew",
    "NoSession",
    "FileStoreError",
    "Unsupported",
    "StoreError",
    "StoreBusy",
    "StoreReadOnly",
    "StoreCorrupt",
    "StoreFull",
    "ForeignDatabase",
    "ReadOnlySession",
    "SessionClosed",
    "OutsideStore",
    "ArchiveError",
    "ModelError",
    "InvocationParams",
]
