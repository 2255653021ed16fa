"""The client of OpenAI-compatible ``/chat/completions`` endpoints (OpenAI, Ollama, llama.cpp,
vLLM, LM Studio...): streamed, standard library only.

    from localchat.app.llm import OpenAICompatibleModel
    model = OpenAICompatibleModel("http://localhost:11434/v1", "llama3")
    for text in model.stream([{"role": "user", "content": "Hi"}]):
        print(text, end="", flush=True)
    model.usage              # {'prompt_tokens': 9, 'completion_tokens': 24}, when reported

The request is ``POST {base_url}/chat/completions`` with ``stream: true`` and
``stream_options: {"include_usage": true}``; the reply is read as server-sent
events (``data:`` lines: ``choices[0].delta.content``, a final ``usage``,
``data: [DONE]``). A server that answers with one JSON body instead is read
too. Every failure is a :class:`~localchat.errors.ModelError` naming the URL
and the model; the API key never appears in one. Imported by (and re-exported
from) :mod:`localchat.app.llm`.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import ModelError

__all__ = ["OpenAICompatibleModel"]


# -- OpenAI-compatible HTTP endpoints -----------------------------------------------

_ERROR_TEXT = 300  # characters of a server's error message kept in ours


def _shown_url(url: str) -> str:
    """``url`` without any user:password part (never in a message)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OpenAICompatibleModel:
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint, streamed.

    ``base_url`` includes the API version (``https://api.openai.com/v1``,
    ``http://localhost:11434/v1`` for Ollama, ``http://localhost:8080/v1`` for
    llama.cpp's server); ``model`` is the name the server knows; ``api_key``
    goes in the ``Authorization: Bearer`` header and nowhere else (not in
    ``repr``, not in error messages); ``timeout`` is the seconds to wait for
    the connection and for each piece of the reply; ``key`` is what the store
    records (default: ``model``). Loopback servers are called directly, other
    hosts through the proxies of the environment (``HTTPS_PROXY``...).

    One stream at a time per instance (``usage`` belongs to the last one).
    Only the standard library is used.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        key: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key or None
        self.timeout = timeout
        self.key = key or model
        self.usage: dict[str, int | None] | None = None

    def __repr__(self) -> str:
        url = _shown_url(self.base_url)
        return f"OpenAICompatibleModel({url!r}, {self.model!r}, key={self.key!r})"

    @property
    def url(self) -> str:
        """The endpoint called: ``{base_url}/chat/completions``."""
        return self.base_url + "/chat/completions"

    def _fail(self, what: str) -> ModelError:
        text = f"{what} (model {self.model!r} at {_shown_url(self.url)})"
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return ModelError(text)

    def stream(self, messages: Sequence[dict[str, Any]]) -> Iterator[str]:
        """POST the messages with ``stream: true`` and yield the text deltas as they arrive.

        Closing the iterator early closes the HTTP response (the server sees the
        connection go). Raises :class:`ModelError` for any failure.
        """
        self.usage = None
        body = {
            "model": self.model,
            "messages": [{"role": m.get("role"), "content": m.get("content")} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        response = self._open(json.dumps(body).encode())
        try:
            kind = response.headers.get_content_type()
            if kind == "application/json":  # a server that does not stream
                yield from self._whole(response)
            else:
                yield from self._events(response)
        except TimeoutError:
            raise self._fail(f"no data for {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise self._fail(f"the connection broke during the reply ({exc})") from None
        finally:
            response.close()

    def _open(self, data: bytes) -> http.client.HTTPResponse:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        handlers = [urllib.request.ProxyHandler({})] if _is_loopback(self.url) else []
        opener = urllib.request.build_opener(*handlers)
        try:
            return opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            with exc:
                detail = _error_detail(exc.read(64_000))
            raise self._fail(f"HTTP {exc.code} {exc.reason}: {detail}") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise self._fail(f"no answer within {self.timeout:g} s") from None
            raise self._fail(f"cannot reach the server ({reason})") from None
        except TimeoutError:
            raise self._fail(f"no answer within {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise self._fail(f"the request failed ({exc})") from None

    def _events(self, response: http.client.HTTPResponse) -> Iterator[str]:
        ended = False  # [DONE] or a finish_reason: the reply is whole
        events = False  # a data: line was seen
        while True:
            line = response.readline()
            if not line:
                break
            text = line.decode("utf-8", "replace").strip()
            if not text.startswith("data:"):
                continue  # blank lines, comments (":"), event: and id: fields
            events = True
            payload = text[5:].strip()
            if payload == "[DONE]":
                ended = True
                break
            chunk = self._parsed(payload)
            delta, finished = self._delta(chunk)
            ended = ended or finished
            if delta:
                yield delta
        kind = response.headers.get_content_type()
        if not events and kind != "text/event-stream":
            raise self._fail(f"the server's answer is not an event stream ({kind}); is base_url "
                             "the API's address, ending in /v1?")  # fmt: skip
        if not ended:
            raise self._fail("the server closed the connection before the reply ended")

    def _parsed(self, payload: str) -> dict[str, Any]:
        try:
            chunk = json.loads(payload)
        except ValueError:
            raise self._fail(f"the server sent a line that is not JSON: {payload[:80]!r}") from None
        if not isinstance(chunk, dict):
            raise self._fail(f"the server sent {payload[:80]!r}, not a JSON object")
        if chunk.get("error"):
            raise self._fail(f"the server reported an error: {_error_detail(chunk)}")
        return chunk

    def _delta(self, chunk: dict[str, Any]) -> tuple[str, bool]:
        """The text of one streamed chunk and whether it ends the reply; keeps its usage."""
        self._keep_usage(chunk.get("usage"))
        choices = chunk.get("choices")
        if choices == [] and "usage" in chunk:
            return "", False
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self._fail(f"a chunk without choices: {json.dumps(chunk)[:120]}")
        choice = choices[0]
        delta = choice.get("delta", choice.get("message"))
        if not isinstance(delta, dict):
            raise self._fail(f"a chunk without a delta: {json.dumps(chunk)[:120]}")
        content = delta.get("content")
        if content is not None and not isinstance(content, str):
            raise self._fail(f"a chunk whose content is not text: {json.dumps(chunk)[:120]}")
        return content or "", bool(choice.get("finish_reason"))

    def _whole(self, response: http.client.HTTPResponse) -> Iterator[str]:
        chunk = self._parsed(response.read().decode("utf-8", "replace"))
        text, _ = self._delta(chunk)
        if text:
            yield text

    def _keep_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self.usage = {
                "prompt_tokens": _count(usage.get("prompt_tokens")),
                "completion_tokens": _count(usage.get("completion_tokens")),
            }


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _error_detail(raw: bytes | dict[str, Any]) -> str:
    """The message of an OpenAI-style error body (``{"error": {"message": ...}}``), else
    the body's text."""
    try:
        body = raw if isinstance(raw, dict) else json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:_ERROR_TEXT]
        if isinstance(error, str) and error:
            return error[:_ERROR_TEXT]
        if body.get("message"):
            return str(body["message"])[:_ERROR_TEXT]
    text = raw.decode("utf-8", "replace").strip() if isinstance(raw, bytes) else ""
    return text[:_ERROR_TEXT] or "no error message"
