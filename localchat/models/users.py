"""People and their web-UI sessions.

from localchat.models import User, WebSession
User.select().where(User.email == "ada@example.org")
"""

from __future__ import annotations

from peewee import BooleanField, CharField, ForeignKeyField, TextField

from .base import BaseModel, SecretField, TimestampedModel, UTCDateTimeField, utcnow

__all__ = ["User", "WebSession"]


class User(TimestampedModel):
    """A person. ``to_dict()`` leaves ``password_hash`` out (``include_secrets=True``)."""

    email = CharField(unique=True, null=True)
    username = CharField(unique=True, null=True)
    external_id = CharField(unique=True, null=True)
    name = CharField(null=True)
    full_name = CharField(null=True)
    password_hash = SecretField(null=True)  # left out of to_dict()
    is_active = BooleanField(default=True)

    class Meta:
        table_name = "user"

    @property
    def hashed_password(self) -> str | None:
        """Alias of ``password_hash``, under the name other chat stores use."""
        return self.password_hash


class WebSession(BaseModel):
    """A local web UI login. Only the sha256 of the caller's token is stored."""

    token_hash = SecretField(unique=True, max_length=64)  # left out of to_dict()
    user = ForeignKeyField(User, backref="web_sessions", on_delete="CASCADE")
    issued_at = UTCDateTimeField(default=utcnow)
    expires_at = UTCDateTimeField(null=True, index=True)
    ip_net = CharField(null=True)
    user_agent = TextField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "web_session"
