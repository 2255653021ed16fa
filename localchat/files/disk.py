"""The document file store's mechanics on disk: names, writes, markers, deletion.

    from localchat.files.disk import clean_filename, is_stored_name, new_stored_name
    assert clean_filename("../Report.PDF") == "Report.PDF"    # display text only
    name = new_stored_name("Report.PDF")                      # uuid4 hex + ".pdf"
    assert is_stored_name(name) and name.endswith(".pdf") and len(name) == 36

Documents are normally stored through :mod:`localchat.repository`
(``create_document_with_file``), which ties each file to its transaction. This
module holds the mechanics those functions share:

- names: the name on disk is ``uuid4().hex`` plus a sanitised extension, never
  anything else taken from the user; the original name is display text only;
- writes: a private temporary file in the same folder, hashed while copied,
  flushed, fsync'ed and renamed into place; folders 0700, files 0600; no
  symlink is ever created or followed inside the store;
- ownership: a folder a store writes in carries the marker file
  ``.localchat-store-<store uuid hex>`` (:func:`mark_folder`); a file is the
  store's to delete only if its name is one the store makes (``<32 hex>[.ext]``
  or a ``.tmp-`` file) and its folder carries that store's marker
  (:func:`owns_file`);
- deletion: :func:`remove_if_unreferenced` deletes such a file only when no
  ``Document`` row refers to it any more, checked when it runs (after commit,
  or after rollback for files new in the transaction); a moved source is
  removed only while it still is the very file that was copied
  (:func:`remove_source_if_unchanged`);
- checking: :mod:`localchat.files.store` compares rows and disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mimetypes
import os
import re
import stat
import tempfile
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import peewee

from ..errors import FileStoreError, NotFound, ValidationError
from ..models import Document
from ..operations import off_loop
from ..storefile import make_private_dirs

__all__ = [
    "CHUNK_SIZE",
    "TEMP_PREFIX",
    "clean_filename",
    "safe_extension",
    "new_stored_name",
    "is_stored_name",
    "guess_mime_type",
    "MARKER_PREFIX",
    "marker_name",
    "folder_markers",
    "has_marker",
    "mark_folder",
    "is_store_file_name",
    "owns_file",
    "check_path_argument",
    "private_folder",
    "Spool",
    "spool",
    "open_stored",
    "hash_file",
    "store_local_file",
    "remove_source_if_unchanged",
    "remove_if_unreferenced",
]

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
#: Temporary files of interrupted writes start with this; ``repair`` removes them.
TEMP_PREFIX = ".tmp-"
#: A folder holding ``MARKER_PREFIX + <store uuid hex>`` belongs to that store.
MARKER_PREFIX = ".localchat-store-"
_MARKER_TEXT = (
    "This folder holds the document files of the localchat store {uuid}.\n"
    "localchat deletes files here that it wrote and no document uses;\n"
    "keep your own files elsewhere.\n"
)
MAX_FILENAME = 255
_EXT_RE = re.compile(r"\.[a-z0-9]{1,16}")
_STORED_RE = re.compile(r"[0-9a-f]{32}(\.[a-z0-9]{1,16})?")
_IDENTITY_RE = re.compile(r"[0-9a-f]{32}")
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"PK\x03\x04", "application/zip"),
)


# -- names -------------------------------------------------------------------
def clean_filename(name: Any) -> str:
    """The display name kept for ``name``: its last path part, as safe text.

    Directory parts (``/`` or ``\\``) are dropped, control characters (NUL
    included) removed, lone surrogates (undecodable bytes) replaced by U+FFFD,
    and the result cut to 255 characters keeping the extension. An empty or
    dots-only name becomes ``"unnamed"``. It is never used as a path.
    """
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    if not isinstance(name, str):
        raise ValidationError(f"filename must be a string, got {type(name).__name__}.")
    text = _decode_surrogates(name)
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(c for c in text if unicodedata.category(c) != "Cc").strip()
    if not text.strip("."):
        return "unnamed"
    if len(text) > MAX_FILENAME:
        ext = safe_extension(text)
        text = text[: MAX_FILENAME - len(ext)] + ext
    return text


def _decode_surrogates(text: str) -> str:
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # surrogates that are not escaped bytes
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def safe_extension(name: str) -> str:
    """``'.pdf'`` for ``'Report.PDF'``; ``''`` unless the extension is 1-16 ASCII letters/digits."""
    ext = os.path.splitext(re.split(r"[/\\]", name)[-1])[1].lower()
    return ext if _EXT_RE.fullmatch(ext) else ""


def new_stored_name(original: str) -> str:
    """A fresh name for the store: 32 hex digits plus the original's safe extension."""
    return uuid.uuid4().hex + safe_extension(original)


def is_stored_name(name: str | None) -> bool:
    """Whether ``name`` is one :func:`new_stored_name` could have made (never a path)."""
    return bool(name) and _STORED_RE.fullmatch(name or "") is not None


def guess_mime_type(filename: str, head: bytes = b"") -> str:
    """The MIME type from the extension, else from the first bytes, else octet-stream."""
    guessed = mimetypes.guess_type("x" + safe_extension(filename), strict=False)[0]
    if guessed:
        return guessed
    for magic, mime in _SIGNATURES:
        if head.startswith(magic):
            return mime
    return "application/octet-stream"


# -- folders and writes ------------------------------------------------------
def private_folder(folder: str | os.PathLike[str]) -> Path:
    """``folder`` as an absolute real path, created 0700 (with parents) if missing.

    A symlinked folder is followed on purpose (e.g. ``files/`` moved to another
    disk); every name inside it is then handled without following links.
    """
    text = check_path_argument("storage_dir", folder)
    if "\0" in text:
        raise ValidationError("storage folder must not contain NUL characters.")
    path = Path(text).expanduser().absolute()
    try:
        make_private_dirs(path)
        real = Path(os.path.realpath(path))
    except (OSError, UnicodeError) as exc:
        raise FileStoreError(f"cannot create the storage folder {str(path)!r}: {exc}") from exc
    if not real.is_dir():
        raise ValidationError(f"storage folder {str(path)!r} exists and is not a folder.")
    return real


def check_path_argument(what: str, value: Any) -> str:
    """``value`` (str, bytes or path-like) as a str path; ValidationError otherwise.

    Undecodable bytes stay as surrogate escapes (the name the file system
    knows); a lone surrogate that is no escaped byte cannot name any file and
    is refused.
    """
    if isinstance(value, (str, bytes, os.PathLike)) and not isinstance(value, bool):
        try:
            text = os.fsdecode(value)
        except TypeError:  # a PathLike whose __fspath__ returns something else
            text = None
        if isinstance(text, str):
            try:
                os.fsencode(text)
            except UnicodeError as exc:
                raise ValidationError(
                    f"{what} {text!r} contains characters no file name can hold (a lone surrogate)."
                ) from exc
            if not text:
                raise ValidationError(f"{what} must not be empty.")
            return text
    raise ValidationError(
        f"{what} must be a path (str or os.PathLike), got {type(value).__name__}: {value!r}."
    )


# -- ownership ---------------------------------------------------------------
def marker_name(identity: str) -> str:
    """``.localchat-store-<identity>``: the file that says a folder is that store's."""
    if not isinstance(identity, str) or not _IDENTITY_RE.fullmatch(identity):
        raise FileStoreError(f"{identity!r} is not a store identity (32 hex digits).")
    return MARKER_PREFIX + identity


def folder_markers(folder: Path) -> set[str]:
    """The identities whose marker (a regular file) is in ``folder``."""
    found: set[str] = set()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        if entry.name.startswith(MARKER_PREFIX) and entry.is_file(follow_symlinks=False):
            ident = entry.name[len(MARKER_PREFIX) :]
            if _IDENTITY_RE.fullmatch(ident):
                found.add(ident)
    return found


def has_marker(folder: Path, identity: str) -> bool:
    """Whether ``folder`` holds the marker of the store ``identity`` (a regular file)."""
    try:
        return stat.S_ISREG(os.lstat(Path(folder) / marker_name(identity)).st_mode)
    except (OSError, ValueError, FileStoreError):
        return False


def mark_folder(folder: Path, identity: str) -> None:
    """Write this store's marker in ``folder`` (0600), if it is not there yet."""
    marker = folder / marker_name(identity)
    if has_marker(folder, identity):  # the usual case: one lstat
        return
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, 0o600)
    except FileExistsError:
        if not stat.S_ISREG(os.lstat(marker).st_mode):
            raise FileStoreError(f"{str(marker)!r} exists and is not a regular file.") from None
        return
    except OSError as exc:
        raise FileStoreError(f"cannot mark the storage folder {str(folder)!r}: {exc}") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(_MARKER_TEXT.format(uuid=identity))
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(folder)


def is_store_file_name(name: str) -> bool:
    """Whether a store could have written a file of this name (stored or temporary)."""
    return is_stored_name(name) or (
        name.startswith(TEMP_PREFIX) and len(name) > len(TEMP_PREFIX) and _plain_name(name)
    )


def owns_file(path: Path, identity: str) -> bool:
    """Whether ``path`` is the store's to delete: its name, and its folder's marker.

    The folder (symlinks in it resolved, the last part never followed) must
    hold ``.localchat-store-<identity>``; the name must be one the store makes.
    """
    where = Path(path)
    if not is_store_file_name(where.name):
        return False
    return has_marker(Path(os.path.realpath(where.parent)), identity)


@dataclass
class Spool:
    """A private temporary copy of a source file, hashed, inside its final folder."""

    folder: Path
    temp: Path | None
    sha256: str
    size: int
    head: bytes
    #: The source as it was when copied: (device, inode, size, mtime in ns).
    source_id: tuple[int, int, int, int] | None = None

    def install(self, name: str) -> Path:
        """Rename the copy to ``name`` (atomically) and make the rename durable."""
        if not is_stored_name(name) or self.temp is None:
            raise FileStoreError(f"refusing to install a file as {name!r}.")
        final = self.folder / name
        os.replace(self.temp, final)
        self.temp = None
        _fsync_dir(self.folder)
        return final

    def discard(self) -> None:
        """Remove the temporary copy, if it is still there."""
        if self.temp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp)
            self.temp = None


@contextlib.contextmanager
def spool(
    src: str | os.PathLike[str], folder: Path, *, max_bytes: int | None = None
) -> Iterator[Spool]:
    """Copy ``src`` to a temporary file in ``folder``; removed on exit unless installed.

    ``src`` may be a symlink (its target's bytes are read) but must end at a
    regular file: a folder, a pipe or a device is refused.
    """
    limit = _check_limit(max_bytes)
    src = check_path_argument("source path", src)
    src_fd = _open_source(src)
    try:
        fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)  # O_EXCL, mode 0600
    except OSError as exc:
        os.close(src_fd)
        raise FileStoreError(f"cannot write in {str(folder)!r}: {exc}") from exc
    result = Spool(folder, Path(temp), "", 0, b"")
    try:
        with os.fdopen(src_fd, "rb") as reader, os.fdopen(fd, "wb") as writer:
            # In an async session: in a worker thread, the event loop runs meanwhile.
            found = off_loop(_copy_into, reader, writer, limit)
            result.sha256, result.size, result.head, result.source_id = found
        yield result
    except OSError as exc:
        raise FileStoreError(f"cannot store {os.fspath(src)!r}: {exc}") from exc
    finally:
        result.discard()


def _copy_into(
    reader: IO[bytes], writer: IO[bytes], limit: int | None
) -> tuple[str, int, bytes, tuple[int, int, int, int]]:
    """Copy ``reader`` to ``writer`` and fsync it: (sha256, size, first bytes, source id)."""
    digest, size, head = hashlib.sha256(), 0, b""
    if limit is not None and os.fstat(reader.fileno()).st_size > limit:
        _too_big(os.fstat(reader.fileno()).st_size, limit)
    while chunk := reader.read(CHUNK_SIZE):
        size += len(chunk)
        if limit is not None and size > limit:
            _too_big(size, limit)
        head = head or chunk[:64]
        digest.update(chunk)
        writer.write(chunk)
    writer.flush()
    os.fsync(writer.fileno())
    return digest.hexdigest(), size, head, _file_id(os.fstat(reader.fileno()))


def _file_id(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _check_limit(max_bytes: int | None) -> int | None:
    if max_bytes is None:
        return None
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValidationError(f"max_bytes must be a whole number of bytes >= 0, got {max_bytes!r}.")
    return max_bytes


def _too_big(size: int, limit: int) -> None:
    raise ValidationError(f"the file is over {limit} bytes (at least {size}); it was not stored.")


def _open_source(src: str | os.PathLike[str]) -> int:
    path = os.fspath(src)
    if isinstance(path, str) and "\0" in path:
        raise ValidationError("source path must not contain NUL characters.")
    try:
        fd = os.open(path, os.O_RDONLY | _O_BINARY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError as exc:
        raise NotFound(f"source file {path!r} does not exist.") from exc
    except IsADirectoryError as exc:
        raise ValidationError(f"source {path!r} is a folder, not a file.") from exc
    except OSError as exc:
        raise FileStoreError(f"cannot read {path!r}: {exc}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValidationError(f"source {path!r} is not a regular file (a folder, pipe or device).")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return fd


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":  # pragma: no cover - directories cannot be fsync'ed there
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_stored(path: Path) -> IO[bytes]:
    """Open a stored file for reading; a symlink or anything but a file is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_BINARY | _O_NOFOLLOW)
    except FileNotFoundError as exc:
        raise FileStoreError(f"the stored file {str(path)!r} is missing.") from exc
    except OSError as exc:
        raise FileStoreError(f"cannot open the stored file {str(path)!r}: {exc}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileStoreError(f"the stored file {str(path)!r} is not a regular file.")
    return os.fdopen(fd, "rb")


def hash_file(path: Path) -> tuple[str, int]:
    """``(sha256 hex, size)`` of a stored file, read without following a symlink."""
    digest, size = hashlib.sha256(), 0
    with open_stored(path) as fh:
        while chunk := fh.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def store_local_file(
    src_path: str | os.PathLike[str],
    storage_dir: str | os.PathLike[str],
    *,
    move: bool = False,
    max_bytes: int | None = None,
) -> tuple[str, Path]:
    """Copy ``src_path`` into ``storage_dir`` as ``<uuid><.ext>``; ``(stored_name, path)``.

    The source is kept unless ``move=True``, in which case it is removed once
    the copy is durable, and only if it still is the file that was copied,
    holding the same bytes (:func:`remove_source_if_unchanged`). No database
    row is written and no folder is marked: a file put in a store's own folder
    this way is an orphan until a document refers to it.
    """
    source = check_path_argument("source path", src_path)
    folder = private_folder(storage_dir)
    with spool(source, folder, max_bytes=max_bytes) as sp:
        name = new_stored_name(source)
        final = sp.install(name)
    if move and sp.source_id is not None:
        remove_source_if_unchanged(source, sp.source_id, sp.sha256)
    return name, final


def remove_source_if_unchanged(src: str, source_id: tuple[int, int, int, int], sha256: str) -> bool:
    """Delete the moved source ``src`` only if it is still what was stored.

    ``src`` must still lead to the same file (device and inode), of the same
    size and modification time as when it was copied, and its bytes, read
    again now, must hash to ``sha256``. Anything else (changed, replaced,
    unreadable) keeps it. A symlinked source loses the link, never its
    target. True if it was removed; never raises.
    """
    try:
        if _file_id(os.stat(src)) != source_id:
            return False
        fd = os.open(src, os.O_RDONLY | _O_BINARY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if _file_id(os.fstat(fh.fileno())) != source_id:
                return False
            digest = hashlib.sha256()
            while chunk := fh.read(CHUNK_SIZE):
                digest.update(chunk)
        if digest.hexdigest() != sha256 or _file_id(os.stat(src)) != source_id:
            return False
        os.unlink(src)
        return True
    except (OSError, ValueError):
        return False


# -- deletion ----------------------------------------------------------------
def _referenced(db: peewee.Database, name: str, path: Path) -> bool:
    query = Document.select(Document.id).where(
        (Document.stored_name == name) | (Document.path == str(path))
    )
    return bool(query.bind(db).exists())


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and not re.search(r"[/\\\0]", name)


def remove_if_unreferenced(db: peewee.Database, name: str, path: Path, identity: str) -> bool:
    """Delete ``path`` if it is the store's own file and no ``Document`` row uses it.

    The store's own file: a name the store makes, in a folder holding the
    marker of the store ``identity`` (:func:`owns_file`); anything else is
    never deleted. Meant to run after a commit or a rollback: the checks
    happen when it runs, so a callback left over from a rolled-back savepoint,
    or a file another document now shares, is kept. Never raises; True if a
    file was removed.
    """
    try:
        if not _plain_name(name) or Path(path).name != name:
            return False
        if not owns_file(Path(path), identity) or _referenced(db, name, path):
            return False
        mode = os.lstat(path).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            return False
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
    except Exception:  # a callback must never fail a commit that already happened
        log.exception("could not release the stored file %s", path)
        return False
