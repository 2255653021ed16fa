"""The pydantic response schemas say exactly what ``to_dict()`` says, and never a secret."""

from __future__ import annotations

import pytest

from localchat.factories import Factories
from localchat.models import ALL_MODELS, SECRET_FIELDS
from localchat.repository import (
    add_message,
    create_web_session,
    log_generation,
    record_response,
)

pydantic = pytest.importorskip("pydantic", reason="the web extra: pip install 'localchat[web]'")
from localchat.schemas import SCHEMAS, ConversationSchema, UserSchema, schema_for  # noqa: E402


@pytest.fixture
def rows(s):
    """One stored row of every public entity, read back from the store."""
    make = Factories(s)
    user = make.user(password="s3cret")
    conv = make.conversation(user=user, tags=["trip"], metadata={"colour": "blue"})
    asked = make.message(conversation=conv, content="Where to?")
    reply = add_message(s, conv.id, "assistant", "Oslo", parent_id=asked.id, model="echo")
    made = [
        user,
        create_web_session(s, "token-1", user.id, ip_net="10.0.0.0/8"),
        conv,
        asked,
        record_response(s, reply.id, "echo", 3, 1, options={"temperature": 0.2}),
        make.prompt(),
        make.document(content=b"hello", filename="a.txt", user=user, conversation=conv),
        make.service(),
        make.model(),
        make.knowledge_chunk(chunk_metadata={"section": 1}),
        log_generation(s, "ada", "readme", {"q": 1}, {"text": "t"}, "echo", 12, 30),
    ]
    return [type(row).get_by_id(row.id) for row in made]


def test_every_public_entity_has_a_schema():
    assert set(SCHEMAS) == set(ALL_MODELS)


def test_schema_fields_are_the_to_dict_keys(rows):
    for row in rows:
        schema = schema_for(type(row))
        keys = {info.serialization_alias or name for name, info in schema.model_fields.items()}
        assert keys == set(row.to_dict()), type(row).__name__


def test_to_dict_round_trips_through_every_schema(rows):
    for row in rows:
        schema, data = schema_for(type(row)), row.to_dict()
        assert schema.model_validate(data).model_dump(mode="json", by_alias=True) == data


def test_a_row_validates_into_what_to_dict_says(rows):
    for row in rows:
        dumped = schema_for(type(row)).model_validate(row).model_dump(mode="json", by_alias=True)
        assert dumped == row.to_dict(), type(row).__name__


def test_no_schema_has_a_secret_field():
    secret_names = {f.name for f in SECRET_FIELDS}
    assert secret_names == {"password_hash", "token_hash"}
    for schema in SCHEMAS.values():
        assert not secret_names & set(schema.model_fields), schema.__name__


def test_a_schema_ignores_a_secret_it_is_given(rows):
    user = rows[0]
    full = user.to_dict(include_secrets=True)
    assert full["password_hash"]
    dumped = UserSchema.model_validate(full).model_dump(mode="json")
    assert "password_hash" not in dumped and full["password_hash"] not in str(dumped)


def test_bad_values_are_refused_by_the_schema():
    with pytest.raises(pydantic.ValidationError):
        ConversationSchema.model_validate({"id": "not a number", "thread_id": "t"})


def test_the_schemas_serve_as_response_models(rows):
    fastapi = pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    conv = rows[2]
    app = fastapi.FastAPI()

    @app.get("/c", response_model=ConversationSchema)
    def one():
        return conv

    @app.get("/cs", response_model=list[ConversationSchema])
    def many():
        return [conv]

    with TestClient(app) as client:
        assert client.get("/c").json() == conv.to_dict()
        assert client.get("/cs").json() == [conv.to_dict()]
