"""The audit log of generation events.

from localchat.models import AuditLog
AuditLog.select().where(AuditLog.user_id == "user_123")
"""

from __future__ import annotations

import uuid as _uuid

from peewee import CharField, IntegerField, JSONField, TextField, UUIDField

from .base import BaseModel, UTCDateTimeField, utcnow

__all__ = ["AUDIT_STATUSES", "AuditLog"]

AUDIT_STATUSES = ("success", "error")


class AuditLog(BaseModel):
    uuid = UUIDField(unique=True, default=_uuid.uuid4)
    user_id = CharField(index=True)  # the caller's user identifier, not a foreign key
    document_type = CharField(index=True)
    document_version = CharField(default="1.0")
    input_data = JSONField()
    generated_text = JSONField()
    model_used = CharField(null=True)  # None: the caller named no model
    tokens_used = IntegerField(null=True)
    generation_time_ms = IntegerField(null=True)
    status = CharField(default="success", max_length=16)
    error_message = TextField(null=True)
    created_at = UTCDateTimeField(default=utcnow, index=True)

    class Meta:
        table_name = "audit_log"
        indexes = ((("user_id", "created_at"), False),)
