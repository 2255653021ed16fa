"""A fake OpenAI-compatible server on 127.0.0.1, for tests: no network, no model.

    from localchat.app.fake_openai import FakeOpenAI
    from localchat.app.llm import OpenAICompatibleModel

    with FakeOpenAI(chunks=["Hel", "lo"], usage=(5, 2)) as server:
        model = OpenAICompatibleModel(server.base_url, "fake-1")
        "".join(model.stream([{"role": "user", "content": "hi"}]))     # 'Hello'
        model.usage                      # {'prompt_tokens': 5, 'completion_tokens': 2}
        server.requests[-1]["body"]["stream"]                          # True

It serves ``POST /v1/chat/completions`` (``base_url`` ends in ``/v1``) as
server-sent events, the way OpenAI, Ollama and llama.cpp do: one ``data:``
line per chunk (``choices[0].delta.content``), a last chunk with
``finish_reason``, a usage chunk when the request asked for one
(``stream_options.include_usage``), then ``data: [DONE]``. Its attributes
say how to answer the next request and may be changed between requests:

* ``chunks``: the text pieces; ``delay``: seconds to wait before each one;
* ``usage``: ``(prompt_tokens, completion_tokens)`` or None (no usage chunk);
* ``status`` / ``error_message``: an HTTP error (e.g. 500) with an OpenAI-style
  JSON error body instead of a stream;
* ``broken_after`` = n: after n chunks, a line that is not JSON;
* ``drop_after`` = n: after n chunks, the connection is closed mid-stream;
* ``raw_body``: these bytes as a ``text/html`` page instead (not an API at all).

``requests`` records every request (``path``, ``headers``, ``body``),
``sent`` counts the text chunks written; ``disconnected`` is set when the
client closed the connection before the stream ended (a stopped reply).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["FakeOpenAI"]


class FakeOpenAI:
    """The server, started by ``with`` (or :meth:`start`) on a free port of 127.0.0.1."""

    def __init__(
        self,
        chunks: Sequence[str] = ("Hello", " there"),
        *,
        delay: float = 0.0,
        usage: tuple[int, int] | None = (3, 2),
        status: int = 200,
        error_message: str = "the model is overloaded",
        broken_after: int | None = None,
        drop_after: int | None = None,
        raw_body: bytes | None = None,
    ) -> None:
        self.chunks = list(chunks)
        self.delay = delay
        self.usage = usage
        self.status = status
        self.error_message = error_message
        self.broken_after = broken_after
        self.drop_after = drop_after
        self.raw_body = raw_body
        self.requests: list[dict[str, Any]] = []
        self.sent = 0
        self.disconnected = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: what a service's ``base_url`` would be."""
        if self._httpd is None:
            raise RuntimeError("the fake server is not running; use it in a with block.")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeOpenAI:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.daemon_threads = True
        httpd.fake = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _event(payload: Any) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {text}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeOpenAI/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- quiet tests
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 -- the http.server name
        fake: FakeOpenAI = self.server.fake  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if self.path != "/v1/chat/completions":
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        if fake.raw_body is not None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(fake.raw_body)
            return
        if fake.status >= 400:
            self._json(fake.status, {"error": {"message": fake.error_message, "type": "error"}})
            return
        try:
            self._stream(fake, body if isinstance(body, dict) else {})
        except (BrokenPipeError, ConnectionResetError):
            fake.disconnected.set()

    def _stream(self, fake: FakeOpenAI, body: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()  # HTTP/1.0: the body ends when the connection closes
        model = body.get("model", "fake")
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model}
        for i, text in enumerate(fake.chunks):
            if fake.broken_after == i:
                self.wfile.write(b"data: {this is not json\n\n")
                return
            if fake.drop_after == i:
                return
            if fake.delay:
                time.sleep(fake.delay)
            delta = {"content": text} if i else {"role": "assistant", "content": text}
            choice = {"index": 0, "delta": delta, "finish_reason": None}
            fake.sent += 1  # before the write: a client that has it sees it counted
            self.wfile.write(_event({**base, "choices": [choice]}))
            self.wfile.flush()
        end = {"index": 0, "delta": {}, "finish_reason": "stop"}
        self.wfile.write(_event({**base, "choices": [end]}))
        wants_usage = (body.get("stream_options") or {}).get("include_usage")
        if fake.usage is not None and wants_usage:
            prompt, completion = fake.usage
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
            self.wfile.write(_event({**base, "choices": [], "usage": usage}))
        self.wfile.write(_event("[DONE]"))
        self.wfile.flush()
