"""Chat models the app can talk to: an offline echo model, OpenAI-compatible HTTP endpoints.

    from localchat.app.llm import EchoModel
    model = EchoModel()
    "".join(model.stream([{"role": "user", "content": "hello there"}]))   # 'hello there'
    model.usage                                  # {'prompt_tokens': 2, 'completion_tokens': 2}

A model streams text deltas for a list of OpenAI-style messages
(``{"role": "user" | "assistant" | "system", "content": str}``). The caller
stops a reply by closing the iterator (``break`` out of the loop, or
``.close()``): the model then releases what it holds (an HTTP response). A
failed call raises :class:`ModelError` saying what went wrong. After the
iterator is exhausted, ``usage`` holds the token counts the model reported
(``prompt_tokens``, ``completion_tokens``; None when it reported none).

The models a conversation can use come from the store's LLM registry
(``create_service`` / ``create_model``): :func:`available_models` lists them
(echo first), :func:`model_for` turns the key a conversation stores
(``Conversation.default_model``, ``"<service>/<model>"``) back into a model,
and :func:`reply_into_store` streams one reply into the store::

    store = open_store("chat.db")
    with store.session() as s:
        svc = create_service(s, "local", "ollama", base_url="http://localhost:11434/v1")
        create_model(s, svc.id, "llama3")
        model = model_for(s, "local/llama3")        # an OpenAICompatibleModel
        history = branch_messages(s, conv_id)      # the current branch, OpenAI-style
    reply_id = reply_into_store(store, conv_id, model, history, on_chunk=print)

See docs/chat-window.md ("Replies from a model").
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from ..database import Session, Store
from ..errors import ModelError, NotFound
from ..models import LLMModel, LLMService
from ..operations import read_operation
from ..repository import (
    get_thread,
    list_messages_for_conversation,
    record_response,
    stream_reply,
)
from .openai_http import OpenAICompatibleModel

__all__ = [
    "ChatModel",
    "EchoModel",
    "ModelError",
    "ECHO",
    "OpenAICompatibleModel",
    "OPENAI_COMPATIBLE_PROVIDERS",
    "available_models",
    "model_for",
    "branch_messages",
    "reply_into_store",
]

#: The key of the offline echo model (stored as a conversation's ``default_model``).
ECHO = "echo"


class ChatModel(Protocol):
    """What the app needs from a model."""

    #: The key stored as ``Conversation.default_model`` and ``Message.model``.
    key: str
    #: Token counts of the last finished stream, or None.
    usage: dict[str, int | None] | None

    def stream(self, messages: Sequence[dict[str, Any]]) -> Iterator[str]:
        """Yield the reply's text as it arrives; raise :class:`ModelError` on failure."""
        ...


class EchoModel:
    """Replies with the last user message, word by word: works offline, for demos and tests.

    ``delay`` seconds pass between words (0: as fast as possible).
    """

    key = ECHO

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.usage: dict[str, int | None] | None = None

    def stream(self, messages: Sequence[dict[str, Any]]) -> Iterator[str]:
        self.usage = None
        last = next(
            (str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), ""
        )
        words = last.split(" ")
        prompt = sum(len(str(m.get("content", "")).split()) for m in messages)
        for i, word in enumerate(words):
            if self.delay and i:
                time.sleep(self.delay)
            yield word if i == 0 else " " + word
        self.usage = {"prompt_tokens": prompt, "completion_tokens": len(last.split())}


# -- the registry: which models a conversation can use ---------------------------

#: Providers (``LLMService.provider``, compared in lower case) that speak the OpenAI
#: chat API, with the URL used when a service has no ``base_url`` (None: it must have one).
OPENAI_COMPATIBLE_PROVIDERS: dict[str, str | None] = {
    "openai": "https://api.openai.com/v1",
    "openai-compatible": None,
    "ollama": "http://localhost:11434/v1",
    "llamacpp": "http://localhost:8080/v1",
    "llama.cpp": "http://localhost:8080/v1",
    "vllm": "http://localhost:8000/v1",
    "lmstudio": "http://localhost:1234/v1",
    "localai": "http://localhost:8080/v1",
    "openrouter": "https://openrouter.ai/api/v1",
}


def _api_key(auth_ref: str | None) -> str | None:
    """The secret ``auth_ref`` names: ``env:NAME`` is that environment variable (None when
    unset); any other kind of reference (keyring:, vault:) gives no key here."""
    if auth_ref and auth_ref.startswith("env:"):
        return os.environ.get(auth_ref[4:].strip()) or None
    return None


def _http_model(service: LLMService, model: LLMModel) -> OpenAICompatibleModel | None:
    provider = (service.provider or "").strip().lower()
    if provider not in OPENAI_COMPATIBLE_PROVIDERS or model.modality != "chat":
        return None
    base_url = service.base_url or OPENAI_COMPATIBLE_PROVIDERS[provider]
    if not base_url:
        return None
    return OpenAICompatibleModel(
        base_url,
        model.name,
        api_key=_api_key(service.auth_ref),
        key=f"{service.name}/{model.name}",
    )


def _registered() -> Iterator[tuple[LLMService, LLMModel]]:
    query = (
        LLMModel.select(LLMModel, LLMService)
        .join(LLMService)
        .where(LLMModel.modality == "chat")
        .order_by(LLMService.name, LLMModel.name)
    )
    for model in query:
        yield model.service, model


@read_operation
def available_models(s: Session) -> list[ChatModel]:
    """The echo model, then every chat model of every OpenAI-compatible service
    (:data:`OPENAI_COMPATIBLE_PROVIDERS`), by service then model name.

    Each one's ``key`` is ``"<service name>/<model name>"``; its API key comes
    from the service's ``auth_ref`` (``env:NAME``) when the model is built.
    """
    models: list[ChatModel] = [EchoModel()]
    for service, model in _registered():
        http = _http_model(service, model)
        if http is not None:
            models.append(http)
    return models


@read_operation
def model_for(s: Session, key: str | None, *, strict: bool = False) -> ChatModel:
    """The model a stored key names (``Conversation.default_model``, ``Message.model``).

    None or ``"echo"`` is the echo model; ``"<service>/<model>"`` the registered
    model (the split that matches a service and one of its chat models). A key
    that names nothing usable (unknown, deleted, a provider that is not
    OpenAI-compatible) also gives the echo model, so an app always has one to
    talk to; ``strict=True`` raises ``NotFound`` instead.
    """
    if key is None or key == ECHO:
        return EchoModel()
    for at in [i for i, ch in enumerate(key) if ch == "/"]:
        service_name, model_name = key[:at], key[at + 1 :]
        found = (
            LLMModel.select(LLMModel, LLMService)
            .join(LLMService)
            .where((LLMService.name == service_name) & (LLMModel.name == model_name))
            .first()
        )
        http = None if found is None else _http_model(found.service, found)
        if http is not None:
            return http
    if strict:
        raise NotFound(
            f"no chat model {key!r}: register it with create_service / create_model "
            "(key '<service name>/<model name>') under an OpenAI-compatible provider "
            f"({', '.join(OPENAI_COMPATIBLE_PROVIDERS)})."
        )
    return EchoModel()


# -- one reply, streamed into the store -------------------------------------------


@read_operation
def branch_messages(
    s: Session,
    conversation_id: int | str,
    limit: int | None = 50,
    *,
    leaf_id: int | str | None = None,
) -> list[dict[str, str]]:
    """The conversation's current branch (its last ``limit`` messages) as OpenAI-style
    dicts, oldest first: what to send a model. With ``leaf_id``, the branch ending at
    that message instead (a regeneration sends the branch up to the question it
    answers again: ``leaf_id=reply.parent_id``). Failed replies (status ``error``),
    empty messages and those an import marked hidden (``metadata["hidden"]``: ChatGPT's
    scaffolding, never shown) are left out."""
    if leaf_id is None:
        shown = list_messages_for_conversation(s, conversation_id, limit=limit, latest=True)
    else:
        shown = get_thread(s, leaf_id, limit=limit)
    return [{"role": m.role, "content": m.content} for m in shown if _sent(m)]


def _sent(m: Any) -> bool:
    hidden = isinstance(m.metadata, dict) and m.metadata.get("hidden")
    return m.status != "error" and bool(m.content) and not hidden


_POLL = 0.05  # seconds between looks at ``stop`` while the model is silent


def _pumped(
    model: ChatModel, messages: Sequence[dict[str, Any]], stop: threading.Event | None
) -> Iterator[tuple[str, Any]]:
    """``("chunk", text)`` as the model streams, then ``("end", None)``, ``("error",
    exception)`` or ``("stopped", None)`` as soon as ``stop`` is set.

    The model's stream runs in a daemon thread (a stream is closed in the thread that
    runs it), so a stop is seen at once even while the model is silent; that thread
    closes the stream (an HTTP model its connection) when its next chunk arrives.
    """
    out: queue.Queue[tuple[str, Any]] = queue.Queue()
    halt = threading.Event()

    def pump() -> None:
        chunks = model.stream(messages)
        try:
            for text in chunks:
                if halt.is_set():
                    return
                out.put(("chunk", text))
            out.put(("end", None))
        except BaseException as exc:  # handed to the caller's thread
            out.put(("error", exc))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    threading.Thread(target=pump, name="localchat-reply", daemon=True).start()
    try:
        while True:
            if stop is not None and stop.is_set():
                yield ("stopped", None)
                return
            try:
                kind, value = out.get(timeout=_POLL if stop is not None else None)
            except queue.Empty:
                continue
            if kind == "chunk" and stop is not None and stop.is_set():
                continue  # arrived after the stop: not shown, not saved
            if kind == "end":
                return
            yield (kind, value)
    finally:
        halt.set()


def reply_into_store(
    store: Store,
    conversation_id: int | str,
    model: ChatModel,
    messages: Sequence[dict[str, Any]],
    *,
    parent_id: int | str | None = None,
    replaces: int | str | None = None,
    on_start: Callable[[int], None] | None = None,
    on_chunk: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Stream ``model``'s reply to ``messages`` into a new assistant message; its id.

    The reply goes under ``parent_id`` (else the conversation's current leaf),
    or is a new version of ``replaces`` (a regeneration). The empty reply
    (status ``streaming``) is committed first and ``on_start(id)`` called (a UI
    draws it), then each chunk is saved in its own transaction
    (:func:`~localchat.repository.stream_reply`) and ``on_chunk(text)`` called
    (a UI shows it). The reply ends:

    * ``complete``, with the token counts the model reported (``record_response``:
      ``model_used`` = ``model.key``, and the time the call took);
    * ``incomplete`` as soon as ``stop`` is set (also while the model is silent):
      the text saved so far stays, and the model's stream is closed (an HTTP
      model closes its connection) when its next chunk arrives;
    * ``error`` with the error's text when the model raises :class:`ModelError`
      (not raised again: the message says what went wrong). Any other
      exception also leaves an ``error`` message, and is raised again.

    It blocks until the reply ends (a UI calls it from a worker thread); the
    model's stream runs in a thread of its own, so a stop is seen at once.
    """
    started = time.monotonic()
    with stream_reply(
        store, conversation_id, parent_id=parent_id, replaces=replaces, model=model.key
    ) as reply:
        if on_start is not None:
            on_start(reply.id)
        for kind, value in _pumped(model, messages, stop):
            if kind == "chunk":
                reply.append(value)
                if on_chunk is not None:
                    on_chunk(value)
            elif kind == "stopped":
                reply.stop()
                return reply.id
            elif isinstance(value, ModelError):
                reply.fail(str(value))
                return reply.id
            else:  # anything else: the reply says so (stream_reply), and it is raised
                raise value
    usage = model.usage
    if usage is not None:
        elapsed = int((time.monotonic() - started) * 1000)
        with store.session() as s:
            record_response(
                s,
                reply.id,
                model.key,
                tokens_prompt=usage.get("prompt_tokens"),
                tokens_completion=usage.get("completion_tokens"),
                completion_time_ms=elapsed,
            )
    return reply.id
