"""The LLM registry (services and models) and validated invocation parameters."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import localchat
from localchat import Conflict, InvocationParams, NotFound, ValidationError
from localchat.models import LLMModel, LLMService
from localchat.repository import (
    build_invocation,
    create_model,
    create_service,
    delete_model,
    delete_service,
    get_model,
    get_model_by_name,
    get_service,
    list_models,
    list_services,
    update_model,
    update_service,
)

HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def svc(s):
    return create_service(
        s, "openai-prod", "openai", base_url="https://api.openai.com/v1", auth_ref="openai_key"
    )


@pytest.fixture
def gpt(s, svc):
    return create_model(s, svc.id, "gpt-4o", modality="chat", supports_tools=True)


# -- services -----------------------------------------------------------------


def test_create_service_keeps_its_fields(s, svc):
    again = get_service(s, svc.id)
    assert (again.name, again.provider, again.base_url, again.auth_ref) == (
        "openai-prod",
        "openai",
        "https://api.openai.com/v1",
        "openai_key",
    )


def test_get_service_by_id_uuid_or_name(s, svc):
    for key in (svc.id, svc.uuid, str(svc.uuid), "openai-prod"):
        assert get_service(s, key) == svc


def test_get_service_prefers_a_name_that_looks_like_an_id(s, svc):
    named = create_service(s, str(svc.id + 1), "local")
    other = create_service(s, "third", "local")
    assert get_service(s, str(svc.id + 1)) == named
    assert get_service(s, other.id) == other


@pytest.mark.parametrize("key", [999, "nope", "00000000-0000-4000-8000-000000000001", None])
def test_get_service_returns_none_when_missing(s, svc, key):
    assert get_service(s, key) is None


def test_a_taken_service_name_is_a_conflict(s, svc):
    with pytest.raises(Conflict):
        create_service(s, "openai-prod", "other")
    assert LLMService.select().count() == 1


@pytest.mark.parametrize(
    "base_url",
    ["ftp://host/v1", "api.openai.com/v1", "https://", "https://user:pw@api.example.com/v1",
     "https://:token@api.example.com", "", "http://[::1/v1", "http://host:99999/v1",
     "http://host:port/v1", "http://[not-an-ip]/v1"],
)  # fmt: skip
def test_create_service_refuses_a_bad_or_credential_carrying_url(s, base_url):
    with pytest.raises(ValidationError):
        create_service(s, "x", "openai", base_url=base_url)


@pytest.mark.parametrize(
    "auth_ref",
    ["sk-proj-abcdefghijklmnop", "Bearer abc", "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
     "AKIAIOSFODNN7EXAMPLE", "env:aB3dE5gH7jK9mN1pQ3sT5vW7yZ", "hf_abc"],
)  # fmt: skip
def test_create_service_refuses_an_auth_ref_that_looks_like_a_secret(s, auth_ref):
    with pytest.raises(ValidationError, match="reference"):
        create_service(s, "x", "openai", auth_ref=auth_ref)


@pytest.mark.parametrize(
    "auth_ref",
    ["openai_key", "env:OPENAI_API_KEY", "keyring:openai/prod", "vault:secret/data/llm#api_key",
     "OPENAI_API_KEY_PRODUCTION_2024"],
)  # fmt: skip
def test_create_service_accepts_references_to_secrets(s, auth_ref):
    assert create_service(s, "x", "openai", auth_ref=auth_ref).auth_ref == auth_ref


@pytest.mark.parametrize(("name", "provider"), [("", "openai"), ("x", ""), (3, "p"), ("x", None)])
def test_create_service_requires_name_and_provider(s, name, provider):
    with pytest.raises(ValidationError):
        create_service(s, name, provider)


def test_list_services_pages_in_name_order(s):
    for name in ["ollama", "anthropic", "openai"]:
        create_service(s, name, name)
    assert [x.name for x in list_services(s)] == ["anthropic", "ollama", "openai"]
    assert [x.name for x in list_services(s, limit=1, offset=2)] == ["openai"]
    assert list_services(s, offset=3) == []


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (1, -1), ("5", 0), (1, None)])
def test_list_functions_refuse_bad_pagination(s, limit, offset):
    with pytest.raises(ValidationError):
        list_services(s, limit=limit, offset=offset)
    with pytest.raises(ValidationError):
        list_models(s, limit=limit, offset=offset)


def test_update_service_changes_fields_and_finds_by_name(s, svc):
    updated = update_service(s, "openai-prod", base_url="http://localhost:8080", provider=None)
    again = get_service(s, svc.id)
    assert updated == again
    assert (again.base_url, again.provider) == ("http://localhost:8080", "openai")


def test_update_service_returns_none_when_missing(s):
    assert update_service(s, "nope", provider="x") is None


@pytest.mark.parametrize(
    "fields", [{"auth_ref": "sk-live-123456789"}, {"base_url": "gopher://x"}, {"colour": "red"}]
)
def test_update_service_refuses_bad_values_and_changes_nothing(s, svc, fields):
    with pytest.raises(ValidationError):
        update_service(s, svc.id, **fields)
    again = get_service(s, svc.id)
    assert (again.auth_ref, again.base_url) == ("openai_key", "https://api.openai.com/v1")


def test_renaming_a_service_onto_a_taken_name_is_a_conflict(s, svc):
    other = create_service(s, "local", "ollama")
    with pytest.raises(Conflict):
        update_service(s, other.id, name="openai-prod")
    assert get_service(s, other.id).name == "local"


def test_delete_service_cascades_to_its_models(s, svc, gpt):
    other = create_service(s, "local", "ollama")
    create_model(s, other.id, "llama3")
    assert delete_service(s, svc.uuid) is True
    assert delete_service(s, svc.id) is False
    assert [m.name for m in LLMModel.select()] == ["llama3"]


# -- models -------------------------------------------------------------------


def test_create_model_defaults(s, svc):
    model = create_model(s, svc.id, "gpt-4o-mini")
    again = get_model(s, model.id)
    assert (again.modality, again.supports_tools, again.context_window) == ("chat", False, None)
    assert again.service == svc


def test_create_model_accepts_the_service_by_name(s, svc):
    assert create_model(s, "openai-prod", "o1", context_window=128_000).service_id == svc.id


def test_create_model_for_a_missing_service_is_not_found(s):
    with pytest.raises(NotFound):
        create_model(s, 42, "gpt-4o")
    assert LLMModel.select().count() == 0


def test_a_model_name_is_unique_per_service_only(s, svc, gpt):
    with pytest.raises(Conflict):
        create_model(s, svc.id, "gpt-4o")
    other = create_service(s, "azure", "azure")
    assert create_model(s, other.id, "gpt-4o").service_id == other.id


@pytest.mark.parametrize(
    "fields",
    [{"name": ""}, {"name": None}, {"modality": None}, {"modality": "Chat Model"},
     {"modality": ""}, {"supports_tools": "yes"},
     {"context_window": 0}, {"context_window": 1.5}, {"context_window": True},
     {"context_window": 2**63}],
)  # fmt: skip
def test_create_model_refuses_bad_values(s, svc, fields):
    arguments = {"name": "m", **fields}
    with pytest.raises(ValidationError):
        create_model(s, svc.id, **arguments)


def test_get_model_by_id_uuid_and_name(s, svc, gpt):
    assert get_model(s, gpt.id) == get_model(s, str(gpt.uuid)) == gpt
    assert get_model_by_name(s, svc.id, "gpt-4o") == gpt
    assert get_model_by_name(s, "openai-prod", "gpt-4o") == gpt
    assert get_model(s, 999) is None
    assert get_model_by_name(s, svc.id, "gpt-5") is None
    assert get_model_by_name(s, "nope", "gpt-4o") is None


def test_list_models_for_all_or_one_service(s, svc, gpt):
    local = create_service(s, "local", "ollama")
    llama = create_model(s, local.id, "llama3")
    mistral = create_model(s, local.id, "mistral")
    assert list_models(s) == [gpt, llama, mistral]
    assert list_models(s, local.id) == [llama, mistral]
    assert list_models(s, "local", limit=1, offset=1) == [mistral]
    assert list_models(s, "no-such-service") == []


def test_update_and_delete_model(s, gpt):
    assert update_model(s, gpt.id, context_window=128_000, supports_tools=False).context_window
    again = get_model(s, gpt.id)
    assert (again.context_window, again.supports_tools) == (128_000, False)
    with pytest.raises(ValidationError):
        update_model(s, gpt.id, modality="NOT OK")
    assert update_model(s, 999, name="x") is None
    assert delete_model(s, gpt.uuid) is True
    assert delete_model(s, gpt.id) is False


# -- invocation parameters ----------------------------------------------------


def test_invocation_params_are_importable_from_the_package():
    assert localchat.InvocationParams is InvocationParams
    assert "InvocationParams" in localchat.__all__


def test_invocation_params_build_without_a_session_as_in_the_reference():
    payload = InvocationParams(service_id=1, model_name="gpt-4o", messages=HELLO, temperature=0.5)
    assert payload.temperature == 0.5 and payload.messages == (
        {"role": "user", "content": "Hello"},
    )


def test_invocation_params_are_frozen_and_copy_their_messages():
    messages = [{"role": "user", "content": "Hello"}]
    payload = InvocationParams(service_id=1, model_name="m", messages=messages)
    messages[0]["content"] = "changed"
    messages.append({"role": "user", "content": "more"})
    assert payload.messages == ({"role": "user", "content": "Hello"},)
    with pytest.raises(dataclasses.FrozenInstanceError):
        payload.temperature = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "changes",
    [
        {"temperature": -0.1},
        {"temperature": 2.01},
        {"temperature": float("nan")},
        {"temperature": "0.5"},
        {"temperature": True},
        {"top_p": 1.5},
        {"max_tokens": 0},
        {"max_tokens": 2.5},
        {"messages": []},
        {"messages": "Hello"},
        {"messages": ["Hello"]},
        {"messages": [{"role": "bot", "content": "x"}]},
        {"messages": [{"role": "user"}]},
        {"messages": [{"role": "user", "content": 5}]},
        {"messages": [{"role": "user", "content": "x", "extra": object()}]},
        {"model_name": ""},
        {"service_id": 0},
        {"service_id": True},
        {"service_id": None},
        {"stop": []},
        {"stop": [""]},
        {"tools": "search"},
        {"tools": ["search"]},
    ],
)
def test_invocation_params_refuse_bad_values_when_built(changes):
    arguments = {"service_id": 1, "model_name": "m", "messages": HELLO, **changes}
    with pytest.raises(ValidationError):
        InvocationParams(**arguments)


@pytest.mark.parametrize("role", ["user", "assistant", "system", "tool"])
def test_every_message_role_is_accepted(role):
    assert InvocationParams(1, "m", [{"role": role, "content": ""}]).messages[0]["role"] == role


@given(temperature=st.floats(min_value=0, max_value=2))
def test_any_temperature_from_0_to_2_is_accepted(temperature):
    assert InvocationParams(1, "m", HELLO, temperature=temperature).temperature == temperature


@given(temperature=st.floats().filter(lambda t: not 0 <= t <= 2))
def test_any_other_temperature_is_refused(temperature):
    with pytest.raises(ValidationError):
        InvocationParams(1, "m", HELLO, temperature=temperature)


def test_to_dict_is_json_ready_and_lists_only_the_options_set():
    payload = InvocationParams(1, "m", HELLO, temperature=1, stop="END", max_tokens=10)
    data = payload.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data == {
        "service_id": 1,
        "model_name": "m",
        "messages": HELLO,
        "max_tokens": 10,
        "stop": ["END"],
        "temperature": 1.0,
    }
    assert payload.options == {"max_tokens": 10, "stop": ["END"], "temperature": 1.0}


def test_validate_checks_the_registry_and_returns_the_params(s, svc, gpt):
    payload = InvocationParams(service_id=svc.id, model_name="gpt-4o", messages=HELLO)
    assert payload.validate(s) is payload
    by_name = InvocationParams(service_id="openai-prod", model_name="gpt-4o", messages=HELLO)
    assert by_name.validate(s) is by_name


def test_validate_refuses_an_unregistered_service_or_model(s, svc, gpt):
    with pytest.raises(NotFound, match="service"):
        InvocationParams(service_id=svc.id + 1, model_name="gpt-4o", messages=HELLO).validate(s)
    other = create_service(s, "local", "ollama")
    create_model(s, other.id, "llama3")
    with pytest.raises(NotFound, match="gpt-4o"):  # registered, but under another service
        InvocationParams(service_id=other.id, model_name="gpt-4o", messages=HELLO).validate(s)


def test_validate_checks_tools_and_context_window_against_the_model(s, svc):
    create_model(s, svc.id, "small", supports_tools=False, context_window=1000)
    with pytest.raises(ValidationError, match="tools"):
        InvocationParams(svc.id, "small", HELLO, tools=[{"name": "search"}]).validate(s)
    with pytest.raises(ValidationError, match="context window"):
        InvocationParams(svc.id, "small", HELLO, max_tokens=1001).validate(s)
    assert InvocationParams(svc.id, "small", HELLO, max_tokens=1000).validate(s)


def test_build_invocation_builds_and_validates_in_one_call(s, svc, gpt):
    payload = build_invocation(s, svc.id, "gpt-4o", HELLO, temperature=0.2, tools=[{"n": 1}])
    assert payload == InvocationParams(svc.id, "gpt-4o", HELLO, temperature=0.2, tools=[{"n": 1}])
    with pytest.raises(ValidationError, match="frequency_penalty"):
        build_invocation(s, svc.id, "gpt-4o", HELLO, frequency_penalty=1)
    with pytest.raises(NotFound):
        build_invocation(s, svc.id, "gpt-5", HELLO)


def test_an_invocation_can_be_built_from_a_service_row(s, svc, gpt):
    assert InvocationParams(svc, "gpt-4o", HELLO).service_id == svc.id
