"""Documents: metadata rows, with their bytes in the store's own file folder.

    import pathlib, tempfile
    from localchat import local_session
    from localchat.repository import create_document_with_file, open_document

    src = pathlib.Path(tempfile.mkdtemp()) / "Report.PDF"
    src.write_bytes(b"%PDF-1.7 ...")
    with local_session() as s:                      # a temporary store
        doc = create_document_with_file(s, src, tags=["q3"])
        assert (doc.filename, doc.mime_type) == ("Report.PDF", "application/pdf")
        with open_document(s, doc.id) as fh:
            assert fh.read(5) == b"%PDF-"
        assert open(doc.path, "rb").read(5) == b"%PDF-"   # doc.path: where the bytes are

The store's own folder is ``<database file name>-files/`` beside the database,
marked with the store's identity (``.localchat-store-<uuid hex>``). The source
is copied (``move=True`` removes it once the transaction commits, if it is
still exactly what was stored). Identical content is stored once and shared; a
shared file is deleted only when the last document using it is gone, only
after the commit, and only if it is the store's own (a name the store makes,
in a folder carrying its marker). A file written in a transaction that rolls
back is removed again. ``storage_dir`` puts the file in another folder (marked
too; its full path is then recorded in the ``path`` column).
:func:`open_document` reads a metadata-only document's path only inside the
store's folders unless ``allow_outside=True``. :func:`verify_file_store`
compares rows and disk; :func:`repair_file_store` removes orphan files (a dry
run unless told).
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import IO, Any

import peewee

from ..checks import check_text, get_row
from ..database import Session
from ..errors import FileStoreError, NotFound, OutsideStore, ValidationError
from ..files import (
    check_path_argument,
    clean_filename,
    folder_markers,
    guess_mime_type,
    has_marker,
    hash_file,
    is_stored_name,
    mark_folder,
    marker_name,
    new_stored_name,
    open_stored,
    private_folder,
    remove_if_unreferenced,
    remove_source_if_unchanged,
    spool,
    store_local_file,
)
from ..files.store import (
    default_folder,
    legacy_folder,
    release_later,
    repair_file_store,
    store_identity,
    verify_file_store,
)
from ..models import Conversation, Document, Message, User
from ..models.documents import stored_file_location
from ..operations import operation
from ._base import paginate, update_row

__all__ = [
    "store_local_file",
    "create_document",
    "create_document_with_file",
    "get_document",
    "list_documents",
    "update_document",
    "attach_document",
    "delete_document",
    "open_document",
    "release_owned_files",
    "verify_file_store",
    "repair_file_store",
]

MAX_TAGS = 100
MAX_TAG_LENGTH = 200


# -- helpers -------------------------------------------------------------------
def _tags(tags: Any) -> list[str] | None:
    if tags is None:
        return None
    if isinstance(tags, str) or not isinstance(tags, (list, tuple, set, frozenset)):
        raise ValidationError(f"tags must be a list of strings, got {tags!r}.")
    clean: list[str] = []
    for tag in tags:
        check_text("tag", tag, max_length=MAX_TAG_LENGTH)
        if tag not in clean:
            clean.append(tag)
    if len(clean) > MAX_TAGS:
        raise ValidationError(f"a document has at most {MAX_TAGS} tags, got {len(clean)}.")
    return clean


def _required(model: type[peewee.Model], key: Any, what: str) -> Any:
    row = get_row(model, key)
    if row is None:
        raise NotFound(f"no {what} {key!r}.")
    return row


def _links(user_id: Any, conversation_id: Any, message_id: Any) -> dict[str, Any]:
    """Owner and attachment rows; a message implies its conversation."""
    links: dict[str, Any] = {}
    if user_id is not None:
        links["user"] = _required(User, user_id, "user")
    conv = None
    if conversation_id is not None:
        conv = _required(Conversation, conversation_id, "conversation")
    if message_id is not None:
        msg = _required(Message, message_id, "message")
        if conv is not None and msg.conversation_id != conv.id:
            raise ValidationError(
                f"message {message_id!r} belongs to conversation {msg.conversation_id}, "
                f"not to {conversation_id!r}."
            )
        links["message"] = msg
        conv = conv or msg.conversation
    if conv is not None:
        links["conversation"] = conv
    return links


def _target_folder(s: Session, storage_dir: Any, identity: str) -> tuple[Path, bool]:
    """The real folder to write into, and whether it is not the store's own.

    The store's own folder must not carry another store's marker (it would
    be that store's folder: a database renamed or replaced).
    """
    own = default_folder(s)
    if storage_dir is None:
        if own is None:
            raise FileStoreError(
                "this store has no file folder of its own (PostgreSQL); pass storage_dir=..."
            )
        folder = private_folder(own)
    else:
        folder = private_folder(storage_dir)
    custom = folder != own
    if not custom and not has_marker(folder, identity):
        owners = folder_markers(folder)
        if owners:
            raise FileStoreError(
                f"{str(folder)!r} belongs to another localchat store (marker "
                f"{marker_name(sorted(owners)[0])}); nothing was stored. Was the database "
                "renamed or replaced? Move that folder away, or pass storage_dir=..."
            )
    return folder, custom


def _location(s: Session, doc: Document) -> Path | None:
    """Where the document's bytes are; None if nowhere (or the row was tampered with)."""
    if doc.stored_name:
        return stored_file_location(
            doc.stored_name, doc.recorded_path, default_folder(s), legacy_folder(s)
        )
    return Path(doc.recorded_path) if doc.recorded_path else None


def _inside_store(s: Session, real: Path) -> bool:
    """Whether the real path ``real`` is a file the store may read without being told.

    Anything directly in its own folder; in ``files/`` of an old store or a
    ``storage_dir`` marked as this store's (folders that may also hold the
    user's own files), only a file with a name the store makes.
    """
    folder = real.parent
    if folder == default_folder(s):
        return True
    if not is_stored_name(real.name):
        return False
    return folder == legacy_folder(s) or has_marker(folder, store_identity(s))


def _same_content(
    s: Session, folder: Path, custom: bool, sha256: str
) -> tuple[Document, Path] | None:
    """A document whose file in ``folder`` has this content (its row and location)."""
    query = Document.select().where(
        (Document.sha256 == sha256) & Document.stored_name.is_null(False)
    )
    for doc in query.order_by(Document.id):
        where = _location(s, doc)
        if where is not None and where.parent == folder and bool(doc.recorded_path) == custom:
            return doc, where
    return None


def _remove_source_later(
    s: Session, src: str, doc_id: int, stored: Path, sha256: str, source_id: Any
) -> None:
    """After the commit, remove the moved source, if it is still exactly what was stored.

    Checked when it runs: the row committed (a callback left over from a
    savepoint rolled back alone must not delete the user's only copy), the
    stored file still holds the content, and the source is still the file
    that was copied, with those very bytes (:func:`remove_source_if_unchanged`).
    """
    db = s.db

    def remove() -> None:
        with contextlib.suppress(OSError, FileStoreError, peewee.PeeweeException):
            if not Document.select(Document.id).where(Document.id == doc_id).bind(db).exists():
                return
            if hash_file(stored)[0] != sha256:
                return
            remove_source_if_unchanged(src, source_id, sha256)

    s.after_commit(remove)


# -- create ----------------------------------------------------------------------
@operation
def create_document(
    s: Session,
    filename: str,
    path: str | os.PathLike[str] | None = None,
    tags: list[str] | None = None,
    *,
    user_id: Any = None,
    conversation_id: Any = None,
    message_id: Any = None,
) -> Document:
    """Record a document by metadata only: nothing is read, copied or checked on disk."""
    if path is not None:
        path = check_text("path", check_path_argument("path", path))
    name = clean_filename(filename)
    return Document.create(
        filename=name,
        path=path,
        mime_type=guess_mime_type(name),
        tags=_tags(tags),
        **_links(user_id, conversation_id, message_id),
    )


@operation
def create_document_with_file(
    s: Session,
    src_path: str | os.PathLike[str],
    original_filename: str | None = None,
    storage_dir: str | os.PathLike[str] | None = None,
    tags: list[str] | None = None,
    *,
    move: bool = False,
    user_id: Any = None,
    conversation_id: Any = None,
    message_id: Any = None,
    max_bytes: int | None = None,
) -> Document:
    """Copy ``src_path`` into the store and record it; the Document row.

    ``original_filename`` (default: the source's name) is kept, cleaned, in
    ``filename``; the file is stored as ``<uuid><.ext>`` in the store's own
    folder, or in ``storage_dir`` (both marked as this store's). Content
    already in the folder is not stored twice. ``move=True`` removes the
    source after the commit, if it is still the file that was copied, with the
    same bytes. ``max_bytes`` refuses larger files with ``ValidationError``.
    """
    source = check_path_argument("source path", src_path)
    if original_filename is None:
        original_filename = os.path.basename(source)
    filename = clean_filename(original_filename)
    fields = {"tags": _tags(tags), **_links(user_id, conversation_id, message_id)}
    if storage_dir is not None:
        check_path_argument("storage_dir", storage_dir)
    identity = store_identity(s)
    folder, custom = _target_folder(s, storage_dir, identity)
    if move and Path(os.path.realpath(source)).parent == folder:
        raise ValidationError(f"{source!r} is already in the storage folder.")
    with spool(source, folder, max_bytes=max_bytes) as sp:
        mark_folder(folder, identity)  # the copy succeeded: the folder holds our file now
        found = _same_content(s, folder, custom, sp.sha256)
        if found is not None and _has_content(found[1], sp.size, sp.sha256):
            name, final, new = str(found[0].stored_name), found[1], False
        else:  # new content, or a missing/damaged shared file healed in place
            name = str(found[0].stored_name) if found else new_stored_name(filename)
            final, new = sp.install(name), True
            release = functools.partial(remove_if_unreferenced, s.db, name, final, identity)
            s.after_rollback(release)
            s.after_commit(release)  # also covers a savepoint rolled back alone
    try:
        doc = Document.create(
            filename=filename,
            recorded_path=str(final) if custom else None,
            stored_name=name,
            sha256=sp.sha256,
            size=sp.size,
            mime_type=guess_mime_type(filename, sp.head),
            **fields,
        )
    except BaseException:
        if new:
            remove_if_unreferenced(s.db, name, final, identity)
        raise
    if move:
        _remove_source_later(s, source, doc.id, final, sp.sha256, sp.source_id)
    return doc


def _has_content(path: Path, size: int, sha256: str) -> bool:
    """Whether the shared file at ``path`` holds exactly this content (size, then hash)."""
    try:
        if os.lstat(path).st_size != size or not path.is_file() or path.is_symlink():
            return False
        return hash_file(path)[0] == sha256
    except (OSError, FileStoreError):
        return False


# -- read ------------------------------------------------------------------------
@operation
def get_document(s: Session, document_id: Any) -> Document | None:
    """The document ``document_id`` names (id, uuid or row); None if missing."""
    return get_row(Document, document_id)


@operation
def list_documents(
    s: Session,
    *,
    user_id: Any = None,
    conversation_id: Any = None,
    message_id: Any = None,
    tag: str | None = None,
    limit: int = 100,
    offset: int = 0,
    include_trashed: bool = False,
) -> list[Document]:
    """Documents, newest first, optionally of one user / conversation / message / tag.

    Trashed documents, and those of trashed conversations, are left out unless
    ``include_trashed=True``.
    """
    query = Document.select()
    if not include_trashed:
        query = query.where(
            Document.trashed_at.is_null(),
            Document.conversation.is_null()
            | Document.conversation.not_in(
                Conversation.select(Conversation.id).where(Conversation.trashed_at.is_null(False))
            ),
        )
    for model, field, key in (
        (User, Document.user, user_id),
        (Conversation, Document.conversation, conversation_id),
        (Message, Document.message, message_id),
    ):
        if key is not None:
            row = get_row(model, key)
            if row is None:
                return []
            query = query.where(field == row.id)
    if tag is not None:
        query = query.where(Document.tags.contains([check_text("tag", tag)]))
    query = query.order_by(Document.created_at.desc(), Document.id.desc())
    return paginate(query, limit, offset)


@operation
def open_document(s: Session, document_id: Any, *, allow_outside: bool = False) -> IO[bytes]:
    """The document's bytes as a binary file object (close it, or use ``with``).

    A stored file is opened where the store put it (never through a symlink).
    A metadata-only document's ``path`` is opened only if it is a file
    directly in the store's own folder, or one with a name the store makes
    directly in ``files/`` of an old store or in a ``storage_dir`` marked as
    this store's; any other path raises ``OutsideStore`` unless the caller
    passes ``allow_outside=True``.
    """
    doc = _required(Document, document_id, "document")
    where = _location(s, doc)
    if where is None:
        raise FileStoreError(f"document {doc.id} ({doc.filename!r}) has no file.")
    if doc.stored_name:
        return open_stored(where)
    try:
        real = Path(os.path.realpath(where))
    except (OSError, ValueError) as exc:
        raise FileStoreError(f"cannot open {str(where)!r}: {exc}") from exc
    if not allow_outside:
        if not _inside_store(s, real):
            raise OutsideStore(
                f"document {doc.id}: {str(where)!r} is outside the store's folders; "
                "localchat opens it only with open_document(..., allow_outside=True)."
            )
        return open_stored(real)
    try:
        return open(real, "rb")
    except (OSError, ValueError) as exc:
        raise FileStoreError(f"cannot open {str(where)!r}: {exc}") from exc


# -- change ----------------------------------------------------------------------
@operation
def update_document(
    s: Session, document_id: Any, *, tags: list[str] | None = None, filename: str | None = None
) -> Document | None:
    """Replace the tags and/or rename; None if the document does not exist."""
    name = clean_filename(filename) if filename is not None else None
    changes: dict[str, Any] = {"tags": _tags(tags), "filename": name}
    if name is not None:
        changes["mime_type"] = _mime_after_rename(document_id, name)
    return update_row(get_row(Document, document_id), changes)


def _mime_after_rename(document_id: Any, filename: str) -> str | None:
    doc = get_row(Document, document_id)
    if doc is None or doc.mime_type not in (None, "application/octet-stream"):
        return None
    return guess_mime_type(filename)


@operation
def attach_document(
    s: Session, document_id: Any, conversation_id: Any = None, message_id: Any = None
) -> Document | None:
    """Attach to a conversation and/or message; None if the document does not exist."""
    if conversation_id is None and message_id is None:
        raise ValidationError("attach_document needs a conversation_id or a message_id.")
    doc = get_row(Document, document_id)
    if doc is None:
        return None
    for key, row in _links(None, conversation_id, message_id).items():
        setattr(doc, key, row)
    doc.save()
    return doc


@operation
def delete_document(s: Session, document_id: Any, delete_file: bool = False) -> bool:
    """Delete the row; with ``delete_file=True`` also its stored file, after the commit.

    A file shared with other documents stays until the last of them goes. Only
    the store's own files are deleted (a name the store makes, in a folder
    carrying this store's marker): a metadata-only document's ``path``, a file
    in ``files/`` of an old store, or a row pointing anywhere else never is.
    """
    doc = get_row(Document, document_id)
    if doc is None:
        return False
    where = _location(s, doc)
    doc.delete_instance()
    if delete_file and doc.stored_name and where is not None:
        release_later(s, doc.stored_name, where)
    return True


@operation
def release_owned_files(s: Session, *, user_id: Any = None, conversation_id: Any = None) -> int:
    """Before deleting a user or conversation: free its documents' files after commit.

    Each file is deleted after the commit if no document uses it any more (the
    rows themselves go by the database's ON DELETE CASCADE). Returns how many
    files were scheduled.
    """
    query = Document.select().where(Document.stored_name.is_null(False))
    if user_id is not None:
        user = get_row(User, user_id)
        if user is None:
            return 0
        owned = Conversation.select(Conversation.id).where(Conversation.user == user.id)
        query = query.where((Document.user == user.id) | Document.conversation.in_(owned))
    elif conversation_id is not None:
        conv = get_row(Conversation, conversation_id)
        if conv is None:
            return 0
        query = query.where(Document.conversation == conv.id)
    else:
        raise ValidationError("release_owned_files needs a user_id or a conversation_id.")
    count = 0
    for doc in query:
        where = _location(s, doc)
        if where is not None:
            release_later(s, str(doc.stored_name), where)
            count += 1
    return count
