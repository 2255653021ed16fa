"""Every table of localchat's domain model, one module per aggregate.

    from localchat.models import ALL_MODELS, Conversation, Message
    [m._meta.table_name for m in ALL_MODELS][:3]   # ['user', 'web_session', 'conversation']

The schema is made only by the migrations in ``migrations/``; a test keeps the
two identical (``playhouse.schema_diff.diff_models``).
"""

from .audit import AUDIT_STATUSES, AuditLog
from .base import (
    SECRET_FIELDS,
    BaseModel,
    IdField,
    SecretField,
    TimestampedModel,
    UTCDateTimeField,
    router,
    utcnow,
)
from .chats import CONVERSATION_STATUSES, MESSAGE_STATUSES, ROLES, Conversation, Message, Response
from .documents import Document
from .knowledge import KnowledgeChunk
from .llm import LLMModel, LLMService
from .prompts import PromptTemplate
from .users import User, WebSession

__all__ = [
    "ALL_MODELS",
    "AUDIT_STATUSES",
    "CONVERSATION_STATUSES",
    "MESSAGE_STATUSES",
    "ROLES",
    "SECRET_FIELDS",
    "AuditLog",
    "BaseModel",
    "Conversation",
    "Document",
    "IdField",
    "KnowledgeChunk",
    "LLMModel",
    "LLMService",
    "Message",
    "PromptTemplate",
    "Response",
    "SecretField",
    "TimestampedModel",
    "UTCDateTimeField",
    "User",
    "WebSession",
    "router",
    "utcnow",
]

#: Every table, parents before children.
ALL_MODELS = (
    User,
    WebSession,
    Conversation,
    Message,
    Response,
    PromptTemplate,
    Document,
    LLMService,
    LLMModel,
    KnowledgeChunk,
    AuditLog,
)
