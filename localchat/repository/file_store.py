"""Check that document rows and files agree, and remove orphan files.

    from localchat import local_session
    from localchat.repository import repair_file_store, verify_file_store

    with local_session() as s:                   # or get_session() for the user's store
        report = verify_file_store(s)            # missing, orphan, damaged files
        assert report.ok, [(i.kind, i.name) for i in report.issues]
        repair_file_store(s, dry_run=False)      # orphans go once this commits

Read by ``localchat files verify|repair``. A file is an *orphan* when it sits
in the store's ``files/`` folder and no document names it (temporary files of
interrupted writes included); other folders given as ``storage_dir`` are
checked for the files their documents name, never searched for orphans.
With SQLite a session holds the write lock, so no other writer is half-way
through storing a file while the folder is scanned.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..database import Session
from ..files import TEMP_PREFIX, hash_file, is_stored_name, remove_if_unreferenced
from ..models import Document
from ._base import operation

__all__ = [
    "FileIssue",
    "FileStoreReport",
    "check_folder",
    "verify_file_store",
    "repair_file_store",
]


def default_folder(s: Session) -> Path | None:
    """The real path of the store's own ``files/`` folder (None on PostgreSQL)."""
    folder = s.store.files_dir
    return Path(os.path.realpath(folder)) if folder is not None else None


def release_later(s: Session, name: str, path: Path) -> None:
    """Delete the file after the commit if no document uses it then."""
    s.after_commit(functools.partial(remove_if_unreferenced, s.db, name, path))


@dataclass(frozen=True)
class FileIssue:
    """One disagreement between the rows and the disk."""

    kind: str  # missing | orphan | size_mismatch | hash_mismatch | not_a_file
    name: str
    path: str
    document_ids: tuple[int, ...] = ()
    detail: str = ""


@dataclass
class FileStoreReport:
    """What :func:`check_folder` found; ``ok`` when nothing disagrees."""

    folder: str | None
    documents: int = 0
    files: int = 0
    issues: list[FileIssue] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    dry_run: bool = True

    @property
    def ok(self) -> bool:
        return not self.issues

    def of_kind(self, kind: str) -> list[FileIssue]:
        return [i for i in self.issues if i.kind == kind]

    @property
    def remaining(self) -> list[FileIssue]:
        """The issues still there after this repair (all of them after a dry run)."""
        gone = set() if self.dry_run else set(self.removed)
        return [i for i in self.issues if not (i.kind == "orphan" and i.name in gone)]

    @property
    def missing(self) -> list[FileIssue]:
        return self.of_kind("missing")

    @property
    def orphans(self) -> list[FileIssue]:
        return self.of_kind("orphan")

    @property
    def mismatches(self) -> list[FileIssue]:
        return self.of_kind("size_mismatch") + self.of_kind("hash_mismatch")

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "ok": self.ok,
            "documents": self.documents,
            "files": self.files,
            "issues": [asdict(i) | {"document_ids": list(i.document_ids)} for i in self.issues],
            "removed": self.removed,
            "dry_run": self.dry_run,
        }


def check_folder(
    folder: Path | None,
    rows: Iterable[tuple[int, str | None, str | None, str | None, int | None]],
    *,
    hashes: bool = True,
) -> FileStoreReport:
    """Compare document rows ``(id, stored_name, path, sha256, size)`` with the disk.

    Files of rows with a stored name are checked wherever they live (``folder``
    when ``path`` is empty). Orphans are looked for in ``folder`` only: a file
    there that no row names (temporary files of interrupted writes included).
    """
    report = FileStoreReport(str(folder) if folder is not None else None)
    expected: dict[Path, list[tuple[int, str, str | None, int | None]]] = {}
    protected: set[Path] = set()
    for doc_id, name, path, sha, size in rows:
        report.documents += 1
        if path:
            protected.add(_real(path))
        if not name:
            continue
        location = _real(path) if path else (folder / name if folder is not None else None)
        bad_path = bool(path) and not Path(path or "").is_absolute()
        if location is None or bad_path or not is_stored_name(name) or location.name != name:
            report.issues.append(
                FileIssue("missing", name, str(location or name), (doc_id,), "no usable location")
            )
            continue
        expected.setdefault(location, []).append((doc_id, name, sha, size))
    for location, users in sorted(expected.items()):
        report.files += 1
        issue = _check_one(location, users, hashes)
        if issue is not None:
            report.issues.append(issue)
    if folder is not None and folder.is_dir():
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            entry_path = Path(entry.path)
            if entry_path in expected or entry_path in protected:
                continue
            if entry.is_file(follow_symlinks=False) or entry.is_symlink():
                detail = "interrupted write" if entry.name.startswith(TEMP_PREFIX) else ""
                report.issues.append(FileIssue("orphan", entry.name, entry.path, (), detail))
            else:
                report.issues.append(
                    FileIssue("not_a_file", entry.name, entry.path, (), "unexpected entry")
                )
    return report


def _real(path: str) -> Path:
    """``path`` with its folder resolved (the last part is not followed)."""
    where = Path(path)
    return Path(os.path.realpath(where.parent)) / where.name


def _check_one(
    location: Path, users: list[tuple[int, str, str | None, int | None]], hashes: bool
) -> FileIssue | None:
    ids = tuple(u[0] for u in users)
    name = users[0][1]
    try:
        st = os.lstat(location)
    except FileNotFoundError:
        return FileIssue("missing", name, str(location), ids)
    if not stat.S_ISREG(st.st_mode):
        return FileIssue("not_a_file", name, str(location), ids, "not a regular file")
    sizes = {u[3] for u in users if u[3] is not None}
    if sizes and sizes != {st.st_size}:
        detail = f"{st.st_size} bytes on disk, {sorted(sizes)} recorded"
        return FileIssue("size_mismatch", name, str(location), ids, detail)
    shas = {u[2] for u in users if u[2]}
    if hashes and shas:
        actual, _ = hash_file(location)
        if shas != {actual}:
            return FileIssue("hash_mismatch", name, str(location), ids, f"sha256 {actual}")
    return None


@operation
def verify_file_store(s: Session, *, hashes: bool = True) -> FileStoreReport:
    """Compare the document rows with the files: missing, orphan, damaged. Read-only.

    ``hashes=False`` checks sizes only (fast). Orphans are looked for in the
    store's own ``files/`` folder; files in other ``storage_dir`` folders are
    checked for presence, size and content.
    """
    rows = Document.select(
        Document.id, Document.stored_name, Document.path, Document.sha256, Document.size
    ).tuples()
    return check_folder(default_folder(s), list(rows), hashes=hashes)  # type: ignore[arg-type]


@operation
def repair_file_store(s: Session, dry_run: bool = True, *, hashes: bool = True) -> FileStoreReport:
    """Remove orphan files (after the commit); a dry run unless ``dry_run=False``.

    ``report.removed`` names the files removed (or that would be). Missing or
    damaged files are reported, never "fixed": they need a backup, or the same
    content stored again, which heals them.
    """
    report = verify_file_store(s, hashes=hashes)
    report.dry_run = dry_run
    for issue in report.orphans:
        report.removed.append(issue.name)
        if not dry_run:
            release_later(s, issue.name, Path(issue.path))
    return report
