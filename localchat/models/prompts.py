"""Versioned prompt templates, looked up by key.

from localchat.models import PromptTemplate
PromptTemplate.get_or_none(PromptTemplate.key == "p1")
"""

from __future__ import annotations

from peewee import CharField, IntegerField, JSONField

from .base import TimestampedModel

__all__ = ["PromptTemplate"]


class PromptTemplate(TimestampedModel):
    key = CharField(unique=True)
    name = CharField()
    content = JSONField()
    version = IntegerField(default=1)

    class Meta:
        table_name = "prompt_template"
