"""Conversations, their message trees and the model responses.

from localchat.models import Conversation, Message
(Message.select()
    .where(Message.conversation == conv)
    .order_by(Message.created_at, Message.id))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peewee import (
    SQL,
    BooleanField,
    CharField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    TextField,
)

from .base import BaseModel, TimestampedModel, UTCDateTimeField, utcnow
from .users import User

__all__ = [
    "CONVERSATION_STATUSES",
    "MESSAGE_STATUSES",
    "ROLES",
    "Conversation",
    "Message",
    "Response",
]

CONVERSATION_STATUSES = ("active", "archived")
#: A message's state: ``streaming`` while a reply arrives, ``incomplete`` when it
#: was stopped or interrupted, ``error`` when it failed (text in ``error``).
MESSAGE_STATUSES = ("complete", "streaming", "incomplete", "error")
ROLES = ("user", "assistant", "system", "tool")


class Conversation(TimestampedModel):
    """A chat (seed names: ChatSession, thread). ``user`` is null when anonymous."""

    user = ForeignKeyField(User, null=True, backref="conversations", on_delete="CASCADE")
    external_id = CharField(unique=True, null=True)  # an app's own thread id
    title = CharField(null=True, max_length=500)
    status = CharField(default="active", max_length=16)
    default_model = CharField(null=True)
    last_message = TextField(null=True)
    # 0008: the end of the branch on screen (None: the latest message); sidebar fields.
    current_leaf_id = IntegerField(null=True)
    # No Python defaults: the columns' SQL defaults fill them (so an INSERT that
    # does not name them also works on a store not yet at 0008).
    pinned = BooleanField(constraints=[SQL("DEFAULT FALSE")])
    tags = JSONField(null=True)
    metadata = JSONField(null=True)
    trashed_at = UTCDateTimeField(null=True)  # 0009: in the trash since (partial index below)
    if TYPE_CHECKING:  # the foreign keys' id columns, as peewee exposes them
        user_id: int | None

    class Meta:
        table_name = "conversation"
        indexes = (
            (("user", "status", "updated_at"), False),
            (("updated_at",), False),
            (("user", "updated_at"), False),  # 0003: a user's newest, any status
            (("user", "pinned", "updated_at"), False),  # 0010: the sidebar, pinned first
        )

    @property
    def thread_id(self) -> str:
        """The app's own thread id (``external_id``), else the uuid."""
        return self.external_id or str(self.uuid)

    def to_dict(self, **kwargs: Any) -> dict[str, Any]:
        """The columns (``user`` as the owner's id) plus ``thread_id``, JSON-ready."""
        data = super().to_dict(**kwargs)
        data["thread_id"] = self.thread_id
        return data


# 0009: the trashed rows only; a listing's "trashed_at IS NULL" never reads through it.
Conversation.add_index(
    Conversation.index(Conversation.trashed_at, name="conversation_trashed_at").where(
        Conversation.trashed_at.is_null(False)
    )
)


class Message(TimestampedModel):
    """One node of a conversation's message tree."""

    conversation = ForeignKeyField(Conversation, backref="messages", on_delete="CASCADE")
    parent = ForeignKeyField("self", null=True, backref="children", on_delete="SET NULL")
    role = CharField(max_length=16)
    content = TextField()
    model = CharField(null=True)
    metadata = JSONField(null=True)
    status = CharField(max_length=16, constraints=[SQL("DEFAULT 'complete'")])  # no Python default
    error = TextField(null=True)  # the error text of a failed reply (status "error")
    if TYPE_CHECKING:
        conversation_id: int
        parent_id: int | None

    class Meta:
        table_name = "message"
        indexes = ((("conversation", "created_at"), False),)

    @property
    def sender_type(self) -> str:
        """Alias of ``role``, under the name other chat stores use."""
        return self.role

    @sender_type.setter
    def sender_type(self, value: Any) -> None:
        self.role = getattr(value, "value", value)

    @property
    def role_metadata(self) -> Any:
        """Alias of ``metadata``, under the name other chat stores use."""
        return self.metadata

    @role_metadata.setter
    def role_metadata(self, value: Any) -> None:
        self.metadata = value


# 0010: the replies still streaming only (start-up's mark_interrupted_replies reads it).
Message.add_index(
    Message.index(Message.status, name="message_streaming").where(Message.status == "streaming")
)


class Response(BaseModel):
    """Usage and timing of the model call that produced an assistant message."""

    message = ForeignKeyField(Message, unique=True, backref="responses", on_delete="CASCADE")
    model_used = CharField()
    tokens_prompt = IntegerField(null=True)
    tokens_completion = IntegerField(null=True)
    tokens_total = IntegerField(null=True)
    completion_time_ms = IntegerField(null=True)
    options = JSONField(null=True)
    usage_details = JSONField(null=True)
    created_at = UTCDateTimeField(default=utcnow, index=True)

    class Meta:
        table_name = "response"
