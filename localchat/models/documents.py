"""Uploaded documents: metadata here, bytes in the store's file folder.

    from localchat.models import Document
    Document.select().where(Document.sha256 == digest)
    open(doc.path, "rb")      # doc.path: where the bytes are, for every document

The ``path`` column keeps its meaning: NULL for a file in the store's own
folder (``<database>-files/``, found by ``stored_name``), the full path for a
file in another ``storage_dir`` folder, or whatever a metadata-only document
was given. ``doc.recorded_path`` is that column; ``doc.path`` on a row is where
the bytes are: the column when set, else the absolute path of the stored file
(in the store's folder, or in ``files/`` beside the database for documents of
stores made before migration 0005 whose file is still there). In queries
``Document.path`` is the column, as before.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from peewee import (
    BigIntegerField,
    CharField,
    ForeignKeyField,
    JSONField,
    SqliteDatabase,
    TextField,
)

from ..config import files_dir_for, legacy_files_dir_for
from .base import TimestampedModel, UTCDateTimeField, router
from .chats import Conversation, Message
from .users import User

__all__ = ["Document", "STORED_NAME", "stored_file_location"]

#: The only names the store gives files: uuid4 hex plus a short lower-case extension.
STORED_NAME = re.compile(r"[0-9a-f]{32}(\.[a-z0-9]{1,16})?")


def stored_file_location(
    stored_name: str | None,
    recorded_path: str | None,
    files_dir: Path | None,
    legacy_dir: Path | None = None,
) -> Path | None:
    """Where a stored document's file is; None if nowhere usable (or tampered with).

    A recorded path must be absolute and end in the stored name. Without one,
    the file is ``files_dir/stored_name``, or ``legacy_dir/stored_name`` when
    only that one exists (files of stores made before migration 0005).
    """
    if not stored_name or not STORED_NAME.fullmatch(stored_name):
        return None
    if recorded_path:
        where = Path(recorded_path)
        return where if where.is_absolute() and where.name == stored_name else None
    if files_dir is None:
        return None
    where = files_dir / stored_name
    if legacy_dir is not None and not os.path.lexists(where):
        old = legacy_dir / stored_name
        if os.path.lexists(old):
            return old
    return where


class _WhereTheBytesAre:
    """``Document.path``: the column on the class, the file's location on a row."""

    def __get__(self, instance: Document | None, owner: type[Document]) -> Any:
        if instance is None:
            return owner.recorded_path
        recorded = instance.recorded_path
        if not instance.stored_name or recorded:
            return recorded
        db = instance._origin
        if not isinstance(db, SqliteDatabase) or db.database in (None, "", ":memory:"):
            return None
        where = stored_file_location(
            instance.stored_name,
            None,
            files_dir_for(db.database),
            legacy_files_dir_for(db.database),
        )
        return str(where) if where is not None else None

    def __set__(self, instance: Document, value: Any) -> None:
        instance.recorded_path = value


class Document(TimestampedModel):
    filename = TextField()  # the original name, as the user knew it
    # The ``path`` column: NULL for the store's own folder, else where the bytes are.
    recorded_path = TextField(column_name="path", null=True)
    stored_name = CharField(null=True, index=True)  # uuid + extension of the stored file
    sha256 = CharField(null=True, max_length=64, index=True)
    size = BigIntegerField(null=True)
    mime_type = CharField(null=True)
    tags = JSONField(null=True)
    user = ForeignKeyField(User, null=True, backref="documents", on_delete="CASCADE")
    conversation = ForeignKeyField(
        Conversation, null=True, backref="documents", on_delete="CASCADE"
    )
    message = ForeignKeyField(Message, null=True, backref="documents", on_delete="SET NULL")
    trashed_at = UTCDateTimeField(null=True)  # 0009: in the trash since (partial index below)

    path = _WhereTheBytesAre()

    class Meta:
        table_name = "document"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The database this row came from: it tells where the store's folder is.
        self._origin = router.obj

    def to_dict(self, **kwargs: Any) -> dict[str, Any]:
        """Columns as JSON-ready values; ``path`` is where the bytes are.

        ``recorded_path`` is the column itself (None for a file in the store's
        own folder).
        """
        data = super().to_dict(**kwargs)
        if "recorded_path" in data:
            data["path"] = self.path
        return data


# 0009: the trashed rows only (see Conversation's).
Document.add_index(
    Document.index(Document.trashed_at, name="document_trashed_at").where(
        Document.trashed_at.is_null(False)
    )
)
