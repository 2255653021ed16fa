"""The chat app's models: echo, OpenAI-compatible HTTP (against a local fake server), the
registry's models, and replies streamed into the store. No network."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from localchat import open_store
from localchat.app.fake_openai import FakeOpenAI
from localchat.app.llm import (
    ECHO,
    EchoModel,
    ModelError,
    OpenAICompatibleModel,
    available_models,
    branch_messages,
    model_for,
    reply_into_store,
)
from localchat.errors import NotFound
from localchat.repository import (
    add_message,
    create_conversation,
    create_model,
    create_service,
    get_message_by_id,
    get_response_for_message,
    list_messages_for_conversation,
    list_versions,
)

HELLO = [{"role": "user", "content": "hi"}]
SECRET = "sk-test-Abc123Def456Ghi789"


@pytest.fixture
def server():
    with FakeOpenAI(chunks=["Hel", "lo", " world"], usage=(7, 3)) as fake:
        yield fake


@pytest.fixture
def store(tmp_path: Path):
    return open_store(tmp_path / "chat.db")


@pytest.fixture
def conv_id(store) -> int:
    with store.session() as s:
        conv = create_conversation(s, title="t")
        add_message(s, conv.id, "user", "hi")
    return conv.id


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _message(store, mid):
    with store.read_session() as s:
        return get_message_by_id(s, mid), get_response_for_message(s, mid)


# -- the HTTP model ------------------------------------------------------------------


def test_http_model_streams_text_deltas_and_reports_usage(server):
    model = OpenAICompatibleModel(server.base_url, "fake-1")
    assert list(model.stream(HELLO)) == ["Hel", "lo", " world"]
    assert model.usage == {"prompt_tokens": 7, "completion_tokens": 3}
    request = server.requests[-1]
    assert request["path"] == "/v1/chat/completions"
    body = request["body"]
    assert body["model"] == "fake-1" and body["messages"] == HELLO
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_http_model_without_usage_leaves_usage_none(server):
    server.usage = None
    model = OpenAICompatibleModel(server.base_url, "fake-1")
    assert "".join(model.stream(HELLO)) == "Hello world"
    assert model.usage is None


def test_http_model_sends_the_api_key_as_bearer_header_only(server):
    model = OpenAICompatibleModel(server.base_url, "fake-1", api_key=SECRET)
    "".join(model.stream(HELLO))
    assert server.requests[-1]["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert SECRET not in repr(model)


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ({"status": 500, "error_message": "the model is overloaded"}, "HTTP 500.*overloaded"),
        ({"status": 404, "error_message": "model 'x' not found"}, "HTTP 404.*not found"),
        ({"broken_after": 1}, "not JSON"),
        ({"drop_after": 1}, "closed the connection before the reply ended"),
        ({"raw_body": b"<html><body>router login</body></html>"}, "not an event stream.*html"),
    ],
)
def test_http_model_failures_raise_model_error_naming_url_and_model(server, setup, expected):
    for name, value in setup.items():
        setattr(server, name, value)
    model = OpenAICompatibleModel(server.base_url, "fake-1")
    with pytest.raises(ModelError, match=expected) as caught:
        list(model.stream(HELLO))
    assert "'fake-1'" in str(caught.value) and server.base_url in str(caught.value)


def test_http_model_on_a_refused_connection_raises_model_error():
    url = f"http://127.0.0.1:{_free_port()}/v1"
    with pytest.raises(ModelError, match="cannot reach the server") as caught:
        list(OpenAICompatibleModel(url, "fake-1").stream(HELLO))
    assert url in str(caught.value)


def test_http_model_times_out_with_model_error(server):
    server.delay = 2.0
    model = OpenAICompatibleModel(server.base_url, "fake-1", timeout=0.2)
    with pytest.raises(ModelError, match="no (data|answer)"):
        list(model.stream(HELLO))


def test_the_api_key_never_appears_in_an_error_message(server):
    server.status = 401
    server.error_message = f"Incorrect API key provided: {SECRET}"
    model = OpenAICompatibleModel(server.base_url, "fake-1", api_key=SECRET)
    with pytest.raises(ModelError, match="HTTP 401") as caught:
        list(model.stream(HELLO))
    assert SECRET not in str(caught.value) and "***" in str(caught.value)


def test_credentials_in_the_base_url_never_appear_in_an_error_message():
    url = f"http://ada:hunter2@127.0.0.1:{_free_port()}/v1"
    with pytest.raises(ModelError) as caught:
        list(OpenAICompatibleModel(url, "fake-1").stream(HELLO))
    assert "hunter2" not in str(caught.value) and "ada" not in str(caught.value)


def test_closing_the_stream_early_closes_the_connection(server):
    server.chunks = [f"w{i} " for i in range(200)]
    server.delay = 0.01
    stream = OpenAICompatibleModel(server.base_url, "fake-1").stream(HELLO)
    assert next(stream) == "w0 "
    stream.close()
    assert server.disconnected.wait(10)


# -- replies into the store ----------------------------------------------------------


def test_a_streamed_reply_lands_complete_with_its_token_counts(store, conv_id, server):
    model = OpenAICompatibleModel(server.base_url, "fake-1", key="fake/fake-1")
    seen: list[str] = []
    mid = reply_into_store(store, conv_id, model, HELLO, on_chunk=seen.append)
    message, response = _message(store, mid)
    assert seen == ["Hel", "lo", " world"]
    assert (message.content, message.status, message.model) == ("Hello world", "complete",
                                                                "fake/fake-1")  # fmt: skip
    assert (response.model_used, response.tokens_prompt, response.tokens_completion,
            response.tokens_total) == ("fake/fake-1", 7, 3, 10)  # fmt: skip
    assert response.completion_time_ms >= 0


def test_each_chunk_is_in_the_store_before_the_ui_sees_it(store, conv_id):
    saved: list[str] = []

    def on_chunk(text: str) -> None:
        with store.read_session() as s:
            shown = list_messages_for_conversation(s, conv_id, limit=1, latest=True)[0]
        saved.append((shown.status, shown.content))

    reply_into_store(store, conv_id, EchoModel(), [{"role": "user", "content": "a b c"}],
                     on_chunk=on_chunk)  # fmt: skip
    assert saved == [("streaming", "a"), ("streaming", "a b"), ("streaming", "a b c")]


def test_stopping_mid_stream_keeps_the_partial_reply_incomplete(store, conv_id, server):
    server.chunks = [f"w{i} " for i in range(200)]
    server.delay = 0.01
    stop = threading.Event()

    def on_chunk(text: str) -> None:
        if text == "w2 ":
            stop.set()

    model = OpenAICompatibleModel(server.base_url, "fake-1")
    mid = reply_into_store(store, conv_id, model, HELLO, on_chunk=on_chunk, stop=stop)
    message, response = _message(store, mid)
    assert (message.status, message.content) == ("incomplete", "w0 w1 w2 ")
    assert response is None
    assert server.disconnected.wait(10)


def test_stop_while_the_model_is_silent_ends_the_reply_without_waiting_for_it(
    store, conv_id, server
):
    server.delay = 3.0  # the model thinks a long time before its first chunk
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    model = OpenAICompatibleModel(server.base_url, "fake-1")
    mid = reply_into_store(store, conv_id, model, HELLO, stop=stop)
    assert server.sent == 0  # back before the server sent anything
    message, _ = _message(store, mid)
    assert (message.status, message.content) == ("incomplete", "")


@pytest.mark.parametrize(
    "setup", [{"status": 500}, {"broken_after": 2}, {"drop_after": 2}], ids=str
)
def test_a_failed_call_leaves_an_error_message_with_the_text_so_far(store, conv_id, server, setup):
    for name, value in setup.items():
        setattr(server, name, value)
    model = OpenAICompatibleModel(server.base_url, "fake-1")
    mid = reply_into_store(store, conv_id, model, HELLO)
    message, response = _message(store, mid)
    assert message.status == "error" and "fake-1" in message.error
    assert message.content == ("" if "status" in setup else "Hello")
    assert response is None


def test_a_refused_connection_leaves_an_error_message(store, conv_id):
    model = OpenAICompatibleModel(f"http://127.0.0.1:{_free_port()}/v1", "fake-1")
    mid = reply_into_store(store, conv_id, model, HELLO)
    message, _ = _message(store, mid)
    assert message.status == "error" and "cannot reach the server" in message.error


def test_an_unexpected_exception_leaves_an_error_message_and_is_raised(store, conv_id):
    class Broken(EchoModel):
        def stream(self, messages):
            yield "par"
            raise RuntimeError("bug in the model adapter")

    with pytest.raises(RuntimeError):
        reply_into_store(store, conv_id, Broken(), HELLO)
    with store.read_session() as s:
        last = list_messages_for_conversation(s, conv_id, limit=1, latest=True)[0]
    assert (last.status, last.content, last.error) == ("error", "par", "bug in the model adapter")


def test_a_regeneration_is_a_new_version_of_the_reply(store, conv_id):
    first = reply_into_store(store, conv_id, EchoModel(), HELLO)
    second = reply_into_store(store, conv_id, EchoModel(), HELLO, replaces=first)
    with store.read_session() as s:
        assert list_versions(s, second).label == "2 of 2"


def test_the_echo_model_reply_records_usage(store, conv_id):
    mid = reply_into_store(store, conv_id, EchoModel(), [{"role": "user", "content": "a b"}])
    message, response = _message(store, mid)
    assert (message.content, message.model) == ("a b", ECHO)
    assert (response.tokens_prompt, response.tokens_completion) == (2, 2)


def test_branch_messages_are_the_current_branch_without_failed_replies(store, conv_id, server):
    server.status = 500
    reply_into_store(store, conv_id, OpenAICompatibleModel(server.base_url, "m"), HELLO)
    with store.read_session() as s:
        assert branch_messages(s, conv_id) == [{"role": "user", "content": "hi"}]


def test_branch_messages_up_to_a_message_are_what_a_regeneration_sends(store, conv_id):
    first = reply_into_store(store, conv_id, EchoModel(), HELLO)
    with store.read_session() as s:
        question = get_message_by_id(s, first).parent_id
        assert [m["role"] for m in branch_messages(s, conv_id)] == ["user", "assistant"]
        assert branch_messages(s, conv_id, leaf_id=question) == HELLO


# -- the registry --------------------------------------------------------------------


@pytest.fixture
def registry(store, monkeypatch, server):
    monkeypatch.setenv("FAKE_OPENAI_KEY", SECRET)
    with store.session() as s:
        local = create_service(s, "local", "Ollama", base_url=server.base_url,
                               auth_ref="env:FAKE_OPENAI_KEY")  # fmt: skip
        create_model(s, local.id, "llama3")
        create_model(s, local.id, "nomic-embed", modality="embedding")
        create_model(s, local.id, "org/model-7b")
        other = create_service(s, "anthropic", "anthropic", base_url="https://example.invalid/v1")
        create_model(s, other.id, "claude")
        bare = create_service(s, "custom", "openai-compatible")  # no base_url: unusable
        create_model(s, bare.id, "m")
    return store


def test_available_models_are_echo_then_the_openai_compatible_chat_models(registry):
    with registry.read_session() as s:
        models = available_models(s)
    assert [m.key for m in models] == [ECHO, "local/llama3", "local/org/model-7b"]
    assert isinstance(models[0], EchoModel)


def test_model_for_finds_a_registered_model_and_its_key_from_the_environment(registry, server):
    with registry.read_session() as s:
        model = model_for(s, "local/llama3")
    assert isinstance(model, OpenAICompatibleModel)
    assert (model.key, model.model, model.base_url) == ("local/llama3", "llama3", server.base_url)
    "".join(model.stream(HELLO))
    assert server.requests[-1]["headers"]["Authorization"] == f"Bearer {SECRET}"


def test_model_for_a_model_name_with_a_slash(registry):
    with registry.read_session() as s:
        assert model_for(s, "local/org/model-7b").model == "org/model-7b"


@pytest.mark.parametrize(
    "key", [None, "echo", "local/gone", "nowhere/llama3", "anthropic/claude", "local/nomic-embed",
            "custom/m", "no-slash"],
)  # fmt: skip
def test_model_for_none_echo_or_an_unusable_key_is_the_echo_model(registry, key):
    with registry.read_session() as s:
        assert isinstance(model_for(s, key), EchoModel)


def test_model_for_strict_raises_not_found_for_an_unusable_key(registry):
    with registry.read_session() as s, pytest.raises(NotFound, match="local/gone"):
        model_for(s, "local/gone", strict=True)


def test_an_auth_ref_that_is_not_env_gives_no_key(store, server):
    with store.session() as s:
        svc = create_service(s, "kr", "vllm", base_url=server.base_url, auth_ref="keyring:kr")
        create_model(s, svc.id, "m")
    with store.read_session() as s:
        "".join(model_for(s, "kr/m").stream(HELLO))
    assert "Authorization" not in server.requests[-1]["headers"]


def test_branch_messages_leave_out_what_an_import_marked_hidden(store, conv_id):
    with store.session() as s:
        add_message(s, conv_id, "system", "scaffolding", {"hidden": True})
        add_message(s, conv_id, "user", "and now?")
    with store.read_session() as s:
        assert [m["content"] for m in branch_messages(s, conv_id)] == ["hi", "and now?"]


def test_on_start_gets_the_reply_before_the_model_is_asked(store, conv_id, server):
    started: list[tuple[int, str, str]] = []

    def on_start(reply_id: int) -> None:
        message, _ = _message(store, reply_id)
        started.append((reply_id, message.status, message.content))

    model = OpenAICompatibleModel(server.base_url, "fake-1")
    mid = reply_into_store(store, conv_id, model, HELLO, on_start=on_start)
    assert started == [(mid, "streaming", "")]
