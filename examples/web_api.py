"""A small local chat web API on localchat: the reference for a web-UI backend.

    uvicorn examples.web_api:app          # the per-user store (or LOCALCHAT_DB_PATH)
    python examples/web_api.py chat.db    # a given store, on http://127.0.0.1:8000

Sign in (``POST /login``) sets an HTTP-only, SameSite=strict cookie holding a
web-session token (only its sha256 is stored). Then: list and open
conversations, post a message, stream an offline echo reply (saved as it
streams; a client that goes away leaves it ``incomplete``), upload and
download documents, search messages. Every row goes out through the pydantic
schemas of :mod:`localchat.schemas`. Needs the ``web`` extra (FastAPI, aiosqlite).

Both kinds of endpoint are here. Most that write are ``async def`` on
``Depends(deps.get_async_db)``: their requests wait for the store's write
lock on the event loop (an ``asyncio.Lock``), hold no thread while they
wait, and commit when the request ends, so any number of them at once just
take turns. Two are ``def`` on ``Depends(deps.get_db)`` (sign-in, whose
password check is slow CPU work that must not run on the loop, and the
upload, which copies a file): they call ``db.commit()`` before they return,
so the transaction ends before FastAPI validates the response in its thread
pool and a commit that fails is the client's answer (see
docs/async-and-web.md, "Many writers at once").
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import anyio
from fastapi import Depends, FastAPI, File, HTTPException, Request, Response, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from localchat import Session, aio, open_store
from localchat.aio import AsyncSession
from localchat.app.llm import EchoModel
from localchat.errors import Conflict, LocalchatError, NotFound, StoreBusy, ValidationError
from localchat.models import Conversation, User
from localchat.repository import (
    authenticate,
    create_document_with_file,
    create_web_session,
    get_conversation_by_thread_id,
    get_document,
    get_web_session,
    list_conversations_for_user,
    list_messages_for_conversation,
    mark_interrupted_replies,
    new_session_token,
    open_document,
    stream_reply,
)
from localchat.schemas import ConversationSchema, DocumentSchema, MessageSchema, UserSchema
from localchat.search import search_messages
from localchat.web import Dependencies, RequestSession

__all__ = ["create_app", "COOKIE", "MAX_UPLOAD_BYTES"]

COOKIE = "localchat_session"
MAX_UPLOAD_BYTES = 10 * 1024 * 1024


class Login(BaseModel):
    login: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class NewConversation(BaseModel):
    title: str | None = Field(default=None, max_length=500)


class NewMessage(BaseModel):
    content: str = Field(min_length=1, max_length=100_000)


class OpenConversation(BaseModel):
    conversation: ConversationSchema  # type: ignore[valid-type]
    messages: list[MessageSchema]  # type: ignore[valid-type]


class SearchHit(BaseModel):
    message: MessageSchema  # type: ignore[valid-type]
    conversation: ConversationSchema  # type: ignore[valid-type]
    snippet: str
    score: float


class _ReplyResponse(StreamingResponse):
    """Closes its generator (in a worker thread) however the response ends.

    A client that disconnects mid-stream thus ends the reply at once, as
    ``incomplete``, instead of whenever the generator is garbage-collected.
    """

    def __init__(self, content: Iterator[str], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._source = content

    async def stream_response(self, send: Any) -> None:
        try:
            await super().stream_response(send)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._source.close)  # type: ignore[attr-defined]


def create_app(
    db_path: str | os.PathLike[str] | None = None,
    *,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    reply_delay: float = 0.0,
    secure_cookie: bool = False,
) -> FastAPI:
    """The app on the store at ``db_path`` (None: the default per-user store)."""
    store = open_store(db_path)
    store.upgrade()
    with store.session() as s:
        mark_interrupted_replies(s)  # replies a crash left "streaming" -> "incomplete"
    deps = Dependencies(store)
    app = FastAPI(title="localchat example")
    app.state.store = store

    @app.exception_handler(LocalchatError)
    def _localchat_error(request: Request, exc: LocalchatError) -> JSONResponse:
        status = 500
        if isinstance(exc, NotFound):
            status = 404
        elif isinstance(exc, ValidationError):
            status = 422
        elif isinstance(exc, Conflict):
            status = 409
        elif isinstance(exc, StoreBusy):
            status = 503
        return JSONResponse({"detail": str(exc)}, status_code=status)

    def current_user(request: Request, db: RequestSession = Depends(deps.get_read_db)) -> User:
        """The signed-in user; 401 for a missing, unknown or expired session."""
        token = request.cookies.get(COOKIE)
        session = get_web_session(db, token) if token else None
        if session is None:
            raise HTTPException(401, "not signed in, or the session has expired")
        return session.user

    def own_conversation(db: Session, thread_id: str, user: User) -> Conversation:
        conv = get_conversation_by_thread_id(db, thread_id)
        if conv is None or conv.user_id != user.id or conv.trashed_at is not None:
            raise HTTPException(404, f"no conversation {thread_id!r}")
        return conv

    @app.post("/login", response_model=UserSchema)
    def login(body: Login, request: Request, response: Response,
              db: RequestSession = Depends(deps.get_db)) -> Any:  # fmt: skip
        user = authenticate(db, body.login, body.password)
        if user is None:
            raise HTTPException(401, "wrong login or password")
        token = new_session_token()
        agent = request.headers.get("user-agent")
        create_web_session(db, token, user.id, user_agent=agent)
        response.set_cookie(
            COOKIE, token, httponly=True, samesite="strict", secure=secure_cookie, path="/"
        )
        db.commit()  # a `def` endpoint that writes commits before it answers (see above)
        return user

    @app.post("/logout", status_code=204)
    async def logout(request: Request, db: AsyncSession = Depends(deps.get_async_db)) -> Response:
        token = request.cookies.get(COOKIE)
        if token:
            await aio.delete_web_session(db, token)
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/me", response_model=UserSchema)
    def me(user: User = Depends(current_user)) -> Any:
        return user

    @app.get("/conversations", response_model=list[ConversationSchema])
    def conversations(
        limit: int = 50,
        offset: int = 0,
        user: User = Depends(current_user),
        db: RequestSession = Depends(deps.get_read_db),
    ) -> Any:
        return list_conversations_for_user(db, user.id, limit=limit, offset=offset)

    @app.post("/conversations", response_model=ConversationSchema, status_code=201)
    async def new_conversation(body: NewConversation, user: User = Depends(current_user),
                               db: AsyncSession = Depends(deps.get_async_db)) -> Any:  # fmt: skip
        return await aio.create_conversation(
            db, user.id, title=body.title, default_model=EchoModel.key
        )

    @app.get("/conversations/{thread_id}", response_model=OpenConversation)
    def open_conversation(thread_id: str, user: User = Depends(current_user),
                          db: RequestSession = Depends(deps.get_read_db)) -> Any:  # fmt: skip
        conv = own_conversation(db, thread_id, user)
        messages = list_messages_for_conversation(db, conv.id, limit=50, latest=True)
        return {"conversation": conv, "messages": messages}

    @app.post("/conversations/{thread_id}/messages", response_model=MessageSchema, status_code=201)
    async def post_message(thread_id: str, body: NewMessage, user: User = Depends(current_user),
                           db: AsyncSession = Depends(deps.get_async_db)) -> Any:  # fmt: skip
        conv = await db.run(own_conversation, thread_id, user)
        return await aio.add_message(db, conv.id, "user", body.content)

    @app.post("/conversations/{thread_id}/reply")
    def reply(thread_id: str, user: User = Depends(current_user),
              db: RequestSession = Depends(deps.get_read_db)) -> StreamingResponse:  # fmt: skip
        """Stream the echo model's reply as plain text, saving each chunk as it goes."""
        conv = own_conversation(db, thread_id, user)
        history = [
            {"role": m.role, "content": m.content}
            for m in list_messages_for_conversation(db, conv.id, limit=50, latest=True)
        ]
        if not history or history[-1]["role"] != "user":
            raise HTTPException(409, "the conversation does not end with a user message")
        conv_id = conv.id
        db.commit()  # the snapshot ends here: nothing is held while the reply streams
        return _ReplyResponse(_echo(conv_id, history), media_type="text/plain")

    def _echo(conv_id: int, history: list[dict[str, Any]]) -> Iterator[str]:
        model = EchoModel(delay=reply_delay)
        with stream_reply(store, conv_id, model=model.key) as streaming:
            chunks = model.stream(history)
            try:
                for chunk in chunks:
                    streaming.append(chunk)  # committed before the client sees it
                    yield chunk
            except GeneratorExit:  # the client went away: keep what arrived
                streaming.stop()
                raise
            finally:
                chunks.close()

    @app.post("/documents", response_model=DocumentSchema, status_code=201)
    def upload(request: Request, file: UploadFile = File(...), thread_id: str | None = None,
               user: User = Depends(current_user),
               db: RequestSession = Depends(deps.get_db)) -> Any:  # fmt: skip
        declared = int(request.headers.get("content-length") or 0)
        if declared > max_upload_bytes + 64 * 1024:  # the multipart framing, generously
            raise HTTPException(413, f"uploads are limited to {max_upload_bytes} bytes")
        folder = tempfile.mkdtemp(prefix="localchat-upload-")
        try:
            spooled = os.path.join(folder, "upload")
            with open(spooled, "wb") as out:
                size = _copy(file.file, out, max_upload_bytes)
            if size > max_upload_bytes:
                raise HTTPException(413, f"uploads are limited to {max_upload_bytes} bytes")
            conv_id = own_conversation(db, thread_id, user).id if thread_id else None
            doc = create_document_with_file(
                db, spooled, file.filename or "upload", user_id=user.id,
                conversation_id=conv_id, max_bytes=max_upload_bytes,
            )  # fmt: skip
            db.commit()
            return doc
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @app.get("/documents/{document_id}")
    def download(document_id: str, user: User = Depends(current_user),
                 db: RequestSession = Depends(deps.get_read_db)) -> Response:  # fmt: skip
        try:
            doc = get_document(db, document_id)
        except ValidationError:
            doc = None
        if doc is None or doc.user_id != user.id or doc.trashed_at is not None:
            raise HTTPException(404, f"no document {document_id!r}")
        with open_document(db, doc.id) as fh:
            content = fh.read()
        disposition = f"attachment; filename*=UTF-8''{_quote(doc.filename)}"
        return Response(
            content,
            media_type=doc.mime_type or "application/octet-stream",
            headers={"Content-Disposition": disposition},
        )

    @app.get("/search", response_model=list[SearchHit])
    def search(q: str, limit: int = 20, user: User = Depends(current_user),
               db: RequestSession = Depends(deps.get_read_db)) -> Any:  # fmt: skip
        return [hit.to_dict() for hit in search_messages(db, q, user_id=user.id, limit=limit)]

    return app


def _copy(src: Any, dst: Any, limit: int) -> int:
    """Copy at most ``limit + 1`` bytes; the number copied (over ``limit``: too big)."""
    size = 0
    while size <= limit:
        chunk = src.read(min(64 * 1024, limit + 1 - size))
        if not chunk:
            break
        dst.write(chunk)
        size += len(chunk)
    return size


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


def __getattr__(name: str) -> Any:
    """``uvicorn examples.web_api:app``: the app on the default store, made on demand."""
    if name == "app":
        return create_app()
    raise AttributeError(name)


if __name__ == "__main__":
    try:
        import uvicorn  # a server to run it; not needed by the example's tests
    except ImportError:
        sys.exit("serving the example needs an ASGI server: pip install uvicorn")

    uvicorn.run(create_app(sys.argv[1] if len(sys.argv) > 1 else None), port=8000)
