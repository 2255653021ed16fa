"""Uploaded documents: metadata here, bytes in the store's ``files/`` folder.

from localchat.models import Document
Document.select().where(Document.sha256 == digest)
"""

from __future__ import annotations

from peewee import BigIntegerField, CharField, ForeignKeyField, JSONField, TextField

from .base import TimestampedModel
from .chats import Conversation, Message
from .users import User

__all__ = ["Document"]


class Document(TimestampedModel):
    filename = TextField()  # the original name, as the user knew it
    path = TextField(null=True)  # where the bytes are (metadata-only documents)
    stored_name = CharField(null=True, index=True)  # uuid + extension inside files/
    sha256 = CharField(null=True, max_length=64, index=True)
    size = BigIntegerField(null=True)
    mime_type = CharField(null=True)
    tags = JSONField(null=True)
    user = ForeignKeyField(User, null=True, backref="documents", on_delete="CASCADE")
    conversation = ForeignKeyField(
        Conversation, null=True, backref="documents", on_delete="CASCADE"
    )
    message = ForeignKeyField(Message, null=True, backref="documents", on_delete="SET NULL")

    class Meta:
        table_name = "document"
