"""Pydantic response schemas of the public entities, made from the models.

    from localchat import local_session
    from localchat.repository import create_user
    from localchat.schemas import UserSchema

    with local_session() as s:
        ada = create_user(s, "ada@example.org", name="Ada")
        body = UserSchema.model_validate(ada).model_dump(mode="json", by_alias=True)
        assert body == ada.to_dict()          # the schema and to_dict() agree

In FastAPI: ``@app.get("/me", response_model=UserSchema)`` and return the row.

Every schema is built by ``playhouse.pydantic_utils.to_pydantic`` from the
model itself (no field is written twice), then adjusted so that it says what
``to_dict()`` says:

- secrets (:data:`~localchat.models.SECRET_FIELDS`: password and token hashes)
  are not in any schema;
- a foreign key is validated from the row's ``user_id`` (no query) or from
  ``to_dict()``'s ``user`` key, and is serialised as ``user`` (FastAPI
  serialises by alias);
- times are serialised as ``to_dict()`` writes them (``isoformat()``, with
  ``+00:00``), values ``to_dict()`` adds (a conversation's ``thread_id``, a
  document's ``path``) are fields too.

pydantic is needed here only (the ``web`` extra).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from peewee import ForeignKeyField

try:
    from playhouse.pydantic_utils import to_pydantic
    from pydantic import (
        AliasChoices,
        BaseModel,
        Field,
        SerializerFunctionWrapHandler,
        field_serializer,
    )
    from pydantic import create_model as _create_model
except ImportError as exc:  # the web extra is optional
    raise ImportError(
        f"localchat.schemas needs pydantic ({exc}): pip install 'localchat[web]'"
    ) from exc

from .models import (
    ALL_MODELS,
    SECRET_FIELDS,
    AuditLog,
    Conversation,
    Document,
    KnowledgeChunk,
    LLMModel,
    LLMService,
    Message,
    PromptTemplate,
    Response,
    User,
    WebSession,
)
from .models import BaseModel as _Row

__all__ = [
    "SCHEMAS",
    "schema_for",
    "UserSchema",
    "WebSessionSchema",
    "ConversationSchema",
    "MessageSchema",
    "ResponseSchema",
    "PromptTemplateSchema",
    "DocumentSchema",
    "LLMServiceSchema",
    "LLMModelSchema",
    "KnowledgeChunkSchema",
    "AuditLogSchema",
]


class _Schema(BaseModel):
    """Base of every schema: times serialised as ``to_dict()`` writes them."""

    @field_serializer("*", mode="wrap", when_used="json")
    def _as_to_dict(self, value: Any, handler: SerializerFunctionWrapHandler) -> Any:
        if isinstance(value, (_dt.datetime, _dt.date)):
            return value.isoformat()
        return handler(value)


class _ConversationExtra(_Schema):
    thread_id: str = Field(description="the app's own thread id (external_id), else the uuid")


class _DocumentExtra(_Schema):
    path: str | None = Field(default=None, description="where the document's bytes are")


_EXTRA: dict[type[_Row], type[_Schema]] = {
    Conversation: _ConversationExtra,
    Document: _DocumentExtra,
}


def _build(model: type[_Row]) -> type[BaseModel]:
    secrets = [f for f in model._meta.sorted_fields if f in SECRET_FIELDS]
    name = f"{model.__name__}Schema"
    made = to_pydantic(
        model,
        exclude=secrets,
        exclude_autofield=False,
        model_name=name,
        base_model=_EXTRA.get(model, _Schema),
    )
    keys: dict[str, Any] = {}
    for field in model._meta.sorted_fields:
        if isinstance(field, ForeignKeyField) and field.column_name in made.model_fields:
            info = made.model_fields[field.column_name]
            keys[field.column_name] = (
                info.annotation,
                Field(
                    default=info.default,
                    validation_alias=AliasChoices(field.column_name, field.name),
                    serialization_alias=field.name,
                ),
            )
    if not keys:
        return made
    return _create_model(name, __base__=made, __module__=__name__, **keys)


#: model -> its schema, for every public entity.
SCHEMAS: dict[type[_Row], type[BaseModel]] = {model: _build(model) for model in ALL_MODELS}


def schema_for(model: type[_Row]) -> type[BaseModel]:
    """The response schema of a model class (KeyError for a model without one)."""
    return SCHEMAS[model]


UserSchema = SCHEMAS[User]
WebSessionSchema = SCHEMAS[WebSession]
ConversationSchema = SCHEMAS[Conversation]
MessageSchema = SCHEMAS[Message]
ResponseSchema = SCHEMAS[Response]
PromptTemplateSchema = SCHEMAS[PromptTemplate]
DocumentSchema = SCHEMAS[Document]
LLMServiceSchema = SCHEMAS[LLMService]
LLMModelSchema = SCHEMAS[LLMModel]
KnowledgeChunkSchema = SCHEMAS[KnowledgeChunk]
AuditLogSchema = SCHEMAS[AuditLog]
