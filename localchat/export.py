"""Stream every message to JSON Lines with bounded memory.

    import sys
    from localchat import local_session
    from localchat.export import export_messages_jsonl, iter_message_records

    with local_session() as s:
        export_messages_jsonl(s, sys.stdout)            # -> number of messages written
        for record in iter_message_records(s, conversation_id=1):
            ...

    $ localchat export --out chats.jsonl

    with local_session() as s, open_export_file("chats.jsonl") as fp:
        export_messages_jsonl(s, fp)   # chats.jsonl appears (0600) when the block ends

One JSON object per message, oldest row first::

    {"uuid": "…", "conversation": "<conversation uuid>", "parent": "<uuid or null>",
     "role": "user", "content": "Hi", "model": null, "metadata": null,
     "created_at": "2025-01-01T10:00:00.123456+00:00"}

Rows are read in keyset pages of ``batch_size`` (``WHERE id > last``), never
all at once, so memory stays flat whatever the store's size, on SQLite and
PostgreSQL alike.

:func:`open_export_file` is how ``--out FILE`` is written: the export holds
every message, so the file is private (0600, whatever the umask) like the
database itself, and it is written beside its final name and renamed into
place only once complete: a failed export leaves an existing file exactly as
it was (content and mode), and nothing half-written.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import peewee

from .checks import check_positive_int, fits_int64
from .database import Session
from .errors import ValidationError
from .models import Conversation, Message
from .operations import session_db

__all__ = ["EXPORT_FIELDS", "iter_message_records", "export_messages_jsonl", "open_export_file"]

#: The keys of every exported record, in order.
EXPORT_FIELDS = (
    "uuid",
    "conversation",
    "parent",
    "role",
    "content",
    "model",
    "metadata",
    "created_at",
)


def _page_sql(param: str, batch_size: int, conversation: bool, include_trashed: bool) -> str:
    where = f'm."id" > {param}'
    if conversation:
        where += f' AND m."conversation_id" = {param}'
    if not include_trashed:
        where += ' AND c."trashed_at" IS NULL'
    return (
        'SELECT m."id", m."uuid", c."uuid", p."uuid", m."role", m."content", m."model", '
        'm."metadata", m."created_at" FROM "message" m '
        'JOIN "conversation" c ON c."id" = m."conversation_id" '
        'LEFT JOIN "message" p ON p."id" = m."parent_id" '
        f'WHERE {where} ORDER BY m."id" LIMIT {int(batch_size)}'
    )


def iter_message_records(
    session: Session,
    *,
    conversation_id: int | None = None,
    batch_size: int = 5000,
    include_trashed: bool = False,
) -> Iterator[dict[str, Any]]:
    """Yield one export record (a JSON-ready dict) per message, in id order.

    Messages of trashed conversations are left out unless ``include_trashed=True``.

    ``batch_size`` (rows per page) must be a positive integer: ValidationError
    otherwise, raised by this call, before any row is read.
    """
    db = session_db("iter_message_records", session)
    check_positive_int("batch_size", batch_size)
    if isinstance(conversation_id, Conversation):
        conversation_id = conversation_id.id
    if conversation_id is not None and (
        isinstance(conversation_id, bool) or not isinstance(conversation_id, int)
    ):
        raise ValidationError(
            f"conversation_id must be an integer id or None, got {conversation_id!r}."
        )
    return _records(db, conversation_id, batch_size, bool(include_trashed))


def _records(
    db: peewee.Database, conversation_id: int | None, batch_size: int, include_trashed: bool
) -> Iterator[dict[str, Any]]:
    if isinstance(conversation_id, int) and not fits_int64(conversation_id):
        return  # no conversation has that id (the driver would raise OverflowError)
    sql = _page_sql(db.param, batch_size, conversation_id is not None, include_trashed)
    as_uuid = Message.uuid.python_value
    as_conv_uuid = Conversation.uuid.python_value
    as_json = Message.metadata.python_value
    as_time = Message.created_at.python_value
    last = 0
    while True:
        params: tuple[Any, ...] = (last,) if conversation_id is None else (last, conversation_id)
        rows = db.execute_sql(sql, params).fetchall()
        for mid, muid, cuid, puid, role, content, model, meta, created in rows:
            yield {
                "uuid": str(as_uuid(muid)),
                "conversation": str(as_conv_uuid(cuid)),
                "parent": None if puid is None else str(as_uuid(puid)),
                "role": role,
                "content": content,
                "model": model,
                "metadata": None if meta is None else as_json(meta),
                "created_at": as_time(created).isoformat(),
            }
            last = mid
        if len(rows) < batch_size:
            return


def export_messages_jsonl(
    session: Session,
    fp: IO[str],
    *,
    conversation_id: int | None = None,
    batch_size: int = 5000,
    include_trashed: bool = False,
) -> int:
    """Write every message (or one conversation's) to ``fp`` as JSON Lines; returns the count.

    Messages of trashed conversations are left out unless ``include_trashed=True``.

    ``fp`` is a file opened for writing text (``open(path, "w", encoding="utf-8")``,
    ``sys.stdout``, ``io.StringIO()``); anything else is a ValidationError.
    """
    if not callable(getattr(fp, "write", None)) or isinstance(
        fp, (io.RawIOBase, io.BufferedIOBase)
    ):
        raise ValidationError(
            f"fp must be a text file opened for writing (open(path, 'w', encoding='utf-8')), "
            f"got {type(fp).__name__}."
        )
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    write = fp.write
    n = 0
    records = iter_message_records(
        session,
        conversation_id=conversation_id,
        batch_size=batch_size,
        include_trashed=include_trashed,
    )
    for record in records:
        write(dumps(record))
        write("\n")
        n += 1
    return n


@contextlib.contextmanager
def open_export_file(path: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """A UTF-8 text file to write an export to; it appears at ``path`` when the block ends.

    * The file is created 0600 (private to the user, whatever the umask).
    * It is written to a temporary file in the same folder and renamed over
      ``path`` only when the block ends without an exception; otherwise the
      temporary file is removed and an existing ``path`` keeps its content and
      mode. A completed export replaces an existing file with a private one.
    * A symbolic link is followed: the file it points to is replaced, the link stays.
    * A read-only file (no write permission for its owner) is refused, untouched.
    * A device or pipe (``/dev/stdout``, a FIFO) is written in place, its mode untouched.

    ValidationError if ``path`` is a directory or its folder does not exist;
    other ``OSError`` (permissions, a full disk) name ``path`` and propagate.
    """
    shown = os.fspath(path)
    target = Path(os.path.realpath(path))
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise ValidationError(f"{shown}: Is a directory; give the name of a file to export to.")
    if mode is not None and stat.S_ISREG(mode) and not mode & stat.S_IWUSR:
        # what open(path, "w") refuses (root included): never replace a read-only file
        raise PermissionError(errno.EACCES, "Permission denied (the file is read-only)", shown)
    if mode is not None and not stat.S_ISREG(mode):
        with open(target, "w", encoding="utf-8") as fp:  # a device or pipe: in place
            yield fp
        return
    if not target.parent.is_dir():
        raise ValidationError(
            f"{shown}: No such file or directory (the folder {target.parent} does not exist)."
        )
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    except OSError as exc:  # name the file the caller asked for, not the temporary one
        raise type(exc)(exc.errno, exc.strerror, shown) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fp:  # mkstemp: O_EXCL, mode 0600
            yield fp
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
