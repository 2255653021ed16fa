"""What a typical chat-app database layer uses: the SQLAlchemy 2 ORM.

Declarative models mapped onto localchat's own tables (the benchmark never
creates a table with SQLAlchemy), an engine with localchat's pragmas set on
every new connection, ``sessionmaker`` sessions, the default pool.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    String,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    aliased,
    mapped_column,
    relationship,
    sessionmaker,
)

from benchmarks.impl_raw import preview

__all__ = ["NAME", "append", "bulk_import", "open_conversation", "list_conversations"]

NAME = "SQLAlchemy ORM"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "user"
    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[uuid.UUID] = mapped_column(default=uuid.uuid4, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=_utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=_utcnow, onupdate=_utcnow)
    email: Mapped[str | None] = mapped_column(String(255), unique=True)
    name: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    conversations: Mapped[list[Conversation]] = relationship(back_populates="user")


class Conversation(Base):
    __tablename__ = "conversation"
    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[uuid.UUID] = mapped_column(default=uuid.uuid4, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=_utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=_utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    title: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="active")
    default_model: Mapped[str | None] = mapped_column(String(255))
    last_message: Mapped[str | None] = mapped_column(Text)
    user: Mapped[User | None] = relationship(back_populates="conversations")
    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", cascade="all, delete-orphan", passive_deletes=True
    )


class Message(Base):
    __tablename__ = "message"
    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[uuid.UUID] = mapped_column(default=uuid.uuid4, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=_utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=_utcnow)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversation.id", ondelete="CASCADE"), index=True
    )
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("message.id", ondelete="SET NULL"))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(255))
    meta: Mapped[Any] = mapped_column("metadata", JSON, nullable=True)
    conversation: Mapped[Conversation] = relationship(back_populates="messages")


def make_engine(path: Path | str, pragmas: Sequence[str]) -> Engine:
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return engine


def append(path: Path, pragmas: Sequence[str], plan: list[dict[str, Any]]) -> list[float]:
    """W1: per conversation, create it, then one transaction per message."""
    engine = make_engine(path, pragmas)
    Session = sessionmaker(engine, expire_on_commit=False)
    latencies = []
    clock = time.perf_counter
    for spec in plan:
        with Session.begin() as s:
            conv = Conversation(user_id=spec["user_id"], title=spec["title"])
            s.add(conv)
        cid, parent = conv.id, None
        for role, content in spec["messages"]:
            t0 = clock()
            with Session.begin() as s:
                now = _utcnow()
                c = s.get(Conversation, cid)
                assert c is not None
                m = Message(
                    conversation_id=cid,
                    parent_id=parent,
                    role=role,
                    content=content,
                    created_at=now,
                    updated_at=now,
                )
                s.add(m)
                c.updated_at = now
                c.last_message = preview(content)
            parent = m.id
            latencies.append(clock() - t0)
    engine.dispose()
    return latencies


def bulk_import(
    path: Path, pragmas: Sequence[str], convs: list[dict[str, Any]], msgs: list[dict[str, Any]]
) -> None:
    """W2: ORM bulk INSERT (``session.execute(insert(Model), list_of_dicts)``), one transaction."""
    engine = make_engine(path, pragmas)
    Session = sessionmaker(engine)
    with Session.begin() as s:
        objs = [
            Conversation(
                user_id=c["user_id"],
                title=c["title"],
                status=c["status"],
                created_at=c["created_at"],
                updated_at=c["created_at"],
            )
            for c in convs
        ]
        s.add_all(objs)
        s.flush()
        ids = [c.id for c in objs]
        rows = []
        last: dict[int, tuple[dt.datetime, str]] = {}
        parents: dict[int, int] = {}
        # Explicit ids (what SQLite would assign) so each message can name its parent.
        next_id = (s.scalar(select(func.max(Message.id))) or 0) + 1
        for m in msgs:
            cid = ids[m["conversation"]]
            rows.append(
                {
                    "id": next_id,
                    "parent_id": parents.get(cid),
                    "uuid": uuid.uuid4(),
                    "conversation_id": cid,
                    "role": m["role"],
                    "content": m["content"],
                    "created_at": m["created_at"],
                    "updated_at": m["created_at"],
                }
            )
            parents[cid] = next_id
            next_id += 1
            last[cid] = (m["created_at"], preview(m["content"]))
        s.execute(insert(Message), rows)
        by_id = dict(zip(ids, objs, strict=True))
        for cid, (at, text) in last.items():
            by_id[cid].updated_at = at
            by_id[cid].last_message = text
    engine.dispose()


def open_conversation(
    path: Path, pragmas: Sequence[str], conv_ids: Sequence[int], limit: int = 50
) -> list[float]:
    """W3: the latest ``limit`` messages, oldest first, one session per read."""
    engine = make_engine(path, pragmas)
    Session = sessionmaker(engine)
    clock = time.perf_counter
    out = []
    for cid in conv_ids:
        t0 = clock()
        with Session() as s:
            rows = s.scalars(_latest(cid, limit)).all()
            list(reversed(rows))
        out.append(clock() - t0)
    engine.dispose()
    return out


def _latest(cid: int, limit: int) -> Any:
    return (
        select(Message)
        .where(Message.conversation_id == cid)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
    )


def list_conversations(
    path: Path, pragmas: Sequence[str], user_ids: Sequence[int], limit: int = 20
) -> list[float]:
    """W4: a user's most recently updated conversations, one session per read."""
    engine = make_engine(path, pragmas)
    Session = sessionmaker(engine)
    clock = time.perf_counter
    out = []
    for uid in user_ids:
        t0 = clock()
        with Session() as s:
            s.scalars(
                select(Conversation)
                .where(Conversation.user_id == uid)
                .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
                .limit(limit)
            ).all()
        out.append(clock() - t0)
    engine.dispose()
    return out


# -- run in a child process (W6, W7) -------------------------------------------
def cold_read(path: str, pragmas: Sequence[str], conv_id: int) -> int:
    engine = make_engine(path, pragmas)
    with sessionmaker(engine)() as s:
        rows = s.scalars(_latest(conv_id, 50)).all()
    engine.dispose()
    return len(rows)


def export(path: str, pragmas: Sequence[str], fp: IO[str]) -> int:
    """W7: every message as JSON lines, streamed with ``yield_per``."""
    engine = make_engine(path, pragmas)
    parent = aliased(Message)
    query = (
        select(Message, Conversation.uuid, parent.uuid)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .outerjoin(parent, parent.id == Message.parent_id)
        .order_by(Message.id)
        .execution_options(yield_per=2000)
    )
    n = 0
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    write = fp.write
    with sessionmaker(engine)() as s:
        for m, conv_uuid, parent_uuid in s.execute(query):
            write(
                dumps(
                    {
                        "uuid": str(m.uuid),
                        "conversation": str(conv_uuid),
                        "parent": str(parent_uuid) if parent_uuid is not None else None,
                        "role": m.role,
                        "content": m.content,
                        "model": m.model,
                        "metadata": m.meta,
                        "created_at": m.created_at.replace(tzinfo=dt.timezone.utc).isoformat(),
                    }
                )
            )
            write("\n")
            n += 1
    engine.dispose()
    return n
