"""Knowledge chunks for retrieval, idempotent on (source, external_id).

from localchat.models import KnowledgeChunk
KnowledgeChunk.select().where(KnowledgeChunk.source == "docs")
"""

from __future__ import annotations

from peewee import CharField, JSONField, TextField

from .base import TimestampedModel

__all__ = ["KnowledgeChunk"]


class KnowledgeChunk(TimestampedModel):
    source = CharField(index=True)
    external_id = CharField(null=True, index=True)
    title = CharField(null=True, max_length=500)
    content = TextField()
    chunk_metadata = JSONField(null=True)
    content_hash = CharField(max_length=64, index=True)

    class Meta:
        table_name = "knowledge_chunk"
        indexes = ((("source", "external_id"), True),)
