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
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from ..errors import LocalchatError

__all__ = ["ChatModel", "EchoModel", "ModelError", "ECHO"]

#: The key of the offline echo model (stored as a conversation's ``default_model``).
ECHO = "echo"


class ModelError(LocalchatError):
    """A model call failed (connection refused, HTTP error, a reply that is not JSON)."""


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


# --- app-side placeholders, replaced by the HTTP client at merge ---
# The `llm` branch brings OpenAICompatibleModel and the real versions of these two
# (echo first, then every chat model of the registry's OpenAI-compatible services).


def available_models(s: Any) -> list[ChatModel]:
    """The models the app offers (placeholder: the echo model only)."""
    return [EchoModel()]


def model_for(s: Any, key: str | None) -> ChatModel:
    """The model with this key (placeholder: always the echo model)."""
    return EchoModel()
