"""Secrets stay in the store: password and token hashes are never serialised by
default, and a password hash is only ever one that ``hash_password`` made."""

from __future__ import annotations

import json

import pytest

from localchat.errors import ValidationError
from localchat.models import ALL_MODELS, User, WebSession
from localchat.repository import (
    _passwords,
    authenticate,
    create_conversation,
    create_user,
    create_web_session,
    get_user,
    hash_password,
    set_password,
    update_user,
    verify_password,
)

TOKEN = "token-the-browser-holds"


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch):
    monkeypatch.setattr(_passwords, "SCRYPT_PARAMS", (2**10, 8, 1))


@pytest.fixture
def ada(s):
    return create_user(s, "ada@example.org", hash_password("s3cret"), username="ada")


# -- serialisation ------------------------------------------------------------


def test_user_to_dict_leaves_out_the_password_hash_unless_asked(s, ada):
    data = ada.to_dict()
    assert "password_hash" not in data and data["email"] == "ada@example.org"
    assert ada.to_dict(include_secrets=True)["password_hash"] == ada.password_hash


def test_web_session_to_dict_leaves_out_the_token_hash_unless_asked(s, ada):
    row = create_web_session(s, TOKEN, ada.id)
    assert "token_hash" not in row.to_dict()
    assert row.to_dict(include_secrets=True)["token_hash"] == row.token_hash


def test_secrets_stay_out_of_rows_serialised_with_their_relations(s, make_document, ada):
    create_web_session(s, TOKEN, ada.id)
    conv = create_conversation(s, user_id=ada.id, title="t")
    make_document(user=ada, conversation=conv)
    secrets = (ada.password_hash, WebSession.get().token_hash)
    for model in ALL_MODELS:
        for row in model.select():
            for kwargs in ({}, {"recurse": True}, {"recurse": True, "backrefs": True}):
                text = json.dumps(row.to_dict(**kwargs), default=str)
                assert not any(secret in text for secret in secrets), (model, kwargs)
    text = json.dumps(ada.to_dict(recurse=True, backrefs=True, include_secrets=True), default=str)
    assert all(secret in text for secret in secrets)


def test_excluding_more_fields_still_leaves_the_secrets_out(s, ada):
    data = ada.to_dict(exclude=[User.name])
    assert "name" not in data and "password_hash" not in data
    assert "password_hash" not in ada.to_dict(only=[User.email, User.password_hash])


# -- only hashes made by hash_password are stored --------------------------------

NOT_OUR_HASHES = [
    "plain text",
    "hashed_pw",
    "scrypt$garbage",
    "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",  # bcrypt
    "scrypt$n=1048576,r=8,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",
]


@pytest.mark.parametrize("value", NOT_OUR_HASHES)
def test_update_user_refuses_a_password_hash_hash_password_did_not_make(s, ada, value):
    before = ada.password_hash
    with pytest.raises(ValidationError, match="hash_password"):
        update_user(s, ada.id, password_hash=value)
    assert get_user(s, ada.id).password_hash == before
    assert authenticate(s, "ada", "s3cret") == ada


@pytest.mark.parametrize("value", NOT_OUR_HASHES)
def test_create_user_refuses_a_password_hash_hash_password_did_not_make(s, value):
    with pytest.raises(ValidationError, match="set_password"):
        create_user(s, "bob@example.org", value)
    assert User.select().count() == 0


def test_a_hash_from_hash_password_is_accepted_with_any_parameters(s, ada, monkeypatch):
    monkeypatch.setattr(_passwords, "SCRYPT_PARAMS", (2**11, 8, 1))
    update_user(s, ada.id, password_hash=hash_password("new one"))
    assert authenticate(s, "ada", "new one") == ada


def test_set_password_hashes_and_stores_the_password(s, ada):
    assert set_password(s, ada.id, "n3w pass") == ada
    stored = get_user(s, ada.id).password_hash
    assert stored.startswith("scrypt$") and verify_password("n3w pass", stored)
    assert authenticate(s, "ada", "n3w pass") == ada
    assert authenticate(s, "ada", "s3cret") is None


def test_set_password_of_a_missing_user_returns_none(s):
    assert set_password(s, 999, "whatever") is None


@pytest.mark.parametrize("password", ["", None, b"bytes"])
def test_set_password_refuses_an_empty_or_non_text_password(s, ada, password):
    before = ada.password_hash
    with pytest.raises(ValidationError):
        set_password(s, ada.id, password)
    assert get_user(s, ada.id).password_hash == before
