"""Your data in and out: localchat exports, and imports from localchat, ChatGPT and llm.

    from localchat import open_store
    from localchat.portable import export_store, import_path

    store = open_store("/tmp/example-portable.db")
    store.upgrade()
    with store.read_session() as s, open("/tmp/example-portable.jsonl", "w") as fp:
        export_store(s, fp)                       # the versioned JSON Lines export
    with store.session() as s:
        report = import_path(s, "/tmp/example-portable.jsonl")   # nothing new: all skipped
    report.added                                  # {}

``import_path`` reads a localchat export (``.jsonl``), a ChatGPT "Export data"
``conversations.json`` or its zip, or llm's ``logs.db``; the format is
detected unless given. One file is one savepoint: a bad record anywhere
raises ``ValidationError`` naming its line or conversation, and the store is
left as it was. ``dry_run=True`` does the whole import and rolls it back, so
the report says exactly what would be added. Importing the same data twice
adds nothing the second time (rows keep their uuids; ChatGPT and llm
conversations their source id in ``external_id``).

Modules: :mod:`.records` (the record types), :mod:`.exporter`,
:mod:`.jsonl` (reading an export), :mod:`.loader` (records into a store),
:mod:`.chatgpt`, :mod:`.llm_logs`, :mod:`.markdown`, :mod:`.progress` (the CLI's counter).
Format, commands and what each importer keeps: ``docs/portability.md``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

from ..database import Session
from ..errors import NotFound, ValidationError
from ..repository import create_user, get_user_by_email
from .exporter import ExportFilter, export_store, iter_export_records
from .loader import Loader
from .markdown import export_markdown
from .records import FORMAT, FORMAT_VERSION

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "FORMATS",
    "ExportFilter",
    "ImportReport",
    "detect_format",
    "export_markdown",
    "export_store",
    "import_path",
    "iter_export_records",
]

#: What ``import_path(format=...)`` accepts.
FORMATS = ("auto", "localchat", "chatgpt", "llm")


@dataclasses.dataclass
class ImportReport:
    """What an import added (or, with ``dry_run``, would add) and what was already there."""

    source: str
    format: str
    dry_run: bool
    added: dict[str, int]
    skipped: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _DryRun(Exception):
    """Raised inside the savepoint to roll a dry run back."""


def detect_format(path: str | os.PathLike[str]) -> str:
    """``"localchat"``, ``"chatgpt"`` or ``"llm"`` from the file's first bytes."""
    name = os.fspath(path)
    if os.path.isdir(name):
        if os.path.exists(os.path.join(name, "conversations.json")):
            return "chatgpt"
        raise ValidationError(f"{name} is a folder without conversations.json; give a file.")
    with open(name, "rb") as fp:
        head = fp.read(4096)
    if head.startswith(b"SQLite format 3\0"):
        return "llm"
    if zipfile.is_zipfile(name):
        return "chatgpt"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"["):
        return "chatgpt"
    if text.startswith(b'{"header": '):  # the JSON form of a localchat export
        return "localchat"
    if text.startswith(b"{"):
        try:  # a localchat export: a first line that is one object with a "type"
            first = json.loads(text.split(b"\n", 1)[0])
        except ValueError:
            first = None  # a ChatGPT conversation object spans lines (or is long)
        return "localchat" if isinstance(first, dict) and "type" in first else "chatgpt"
    raise ValidationError(
        f"{name}: not a localchat export, a ChatGPT conversations.json or zip, or an llm "
        "logs.db; pass --format if it is one of them."
    )


def _records(
    fmt: str, path: str, loader: Loader, options: dict[str, Any]
) -> Iterator[tuple[str, Any]]:
    if fmt == "localchat":
        from .jsonl import read_export

        return read_export(path)
    if fmt == "chatgpt":
        from .chatgpt import chatgpt_records

        return chatgpt_records(path, loader)
    from .llm_logs import llm_records

    return llm_records(path, loader, attachments_dir=options.get("attachments_dir"))


def _owner(s: Session, user: Any) -> tuple[int | None, bool]:
    """The id of the user with this email (made if missing), and whether it was made."""
    if user is None:
        return None, False
    if not isinstance(user, str) or "@" not in user:
        raise ValidationError(f"user must be an email address, got {user!r}.")
    found = get_user_by_email(s, user)
    return (found.id, False) if found is not None else (create_user(s, email=user).id, True)


def import_path(
    s: Session,
    path: str | os.PathLike[str],
    *,
    format: str = "auto",
    user: str | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    attachments_dir: str | os.PathLike[str] | None = None,
    storage_dir: str | os.PathLike[str] | None = None,
) -> ImportReport:
    """Import one file into the session's store, all or nothing; the report.

    ``format``: one of :data:`FORMATS`. ``user``: an email; the imported
    conversations belong to that user (made if missing). ``attachments_dir``
    (llm): where to look for files attached by path that are no longer where
    llm recorded them. ``storage_dir``: where documents' bytes are stored when
    not in the store's own folder (``create_document_with_file``; PostgreSQL
    stores have none). ``progress`` is called with the records read so far.
    """
    if format not in FORMATS:
        raise ValidationError(f"format {format!r} is not one of {', '.join(FORMATS)}.")
    name = os.fspath(path)
    if not os.path.exists(name):
        raise NotFound(f"{name}: no such file.")
    fmt = detect_format(name) if format == "auto" else format
    report = ImportReport(name, fmt, dry_run, {}, {})
    try:
        with s.savepoint():
            owner, made = _owner(s, user)
            loader = Loader(s, owner_id=owner, progress=progress, storage_dir=storage_dir)
            try:
                for where, record in _records(
                    fmt, name, loader, {"attachments_dir": attachments_dir}
                ):
                    loader.add(where, record)
                result = loader.finish()
            finally:
                loader.close()
            report.added, report.skipped = result.added, result.skipped
            if made:
                report.added = {"user": 1, **report.added}
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    except (UnicodeDecodeError, zipfile.BadZipFile) as exc:
        raise ValidationError(f"{name}: cannot be read as {fmt} ({exc}).") from None
    return report
