"""The registry of LLM services (endpoints) and the models each serves.

from localchat.models import LLMService, LLMModel
LLMModel.select().join(LLMService).where(LLMService.name == "openai-prod")
"""

from __future__ import annotations

from peewee import BooleanField, CharField, ForeignKeyField, IntegerField

from .base import TimestampedModel

__all__ = ["LLMService", "LLMModel"]


class LLMService(TimestampedModel):
    """An endpoint. ``auth_ref`` names a secret kept elsewhere; never a secret."""

    name = CharField(unique=True)
    provider = CharField()
    base_url = CharField(null=True)
    auth_ref = CharField(null=True)

    class Meta:
        table_name = "llm_service"


class LLMModel(TimestampedModel):
    service = ForeignKeyField(LLMService, backref="models", on_delete="CASCADE")
    name = CharField()
    modality = CharField(default="chat")
    supports_tools = BooleanField(default=False)
    context_window = IntegerField(null=True)

    class Meta:
        table_name = "llm_model"
        indexes = ((("service", "name"), True),)
