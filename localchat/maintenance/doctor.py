"""Doctor: check a store and fix what is safe to fix; never deletes a row.

    from localchat import open_store
    from localchat.maintenance import check_store

    store = open_store("/tmp/doctor-example.db")
    with store.session():
        pass
    report = check_store(store)                   # read-only
    assert report.exit_code == 0, [f.detail for f in report.problems]
    fixed = check_store(store, repair=True)       # rebuild damaged indexes, remove orphans, ...
    assert fixed.ok

Checks: the file is SQLite and localchat's; schema version and pending
migrations; ``PRAGMA quick_check`` (``full=True``: ``integrity_check`` and the
FTS5 ``integrity-check`` command, which takes the write lock for its run);
``foreign_key_check``; every full-text index against its table; the file
store (``hashes=True`` also hashes every file); WAL size; free pages; the
permissions of the database, its WAL and the file folder. Everything is read
in a read session (a store with pending migrations: on the read connection,
no session), so the app keeps writing meanwhile, and a damaged or foreign
file is never changed.

``repair=True`` then, only when the database itself is sound and at the
newest schema: rebuilds a full-text index that disagrees with its table,
removes orphan files from the store's own marked folder (after the commit)
and checkpoints the WAL; it reports what it did and checks again. A foreign
key violation, a missing or damaged file, a damaged database are reported
with what to do (docs/maintenance.md), never "fixed" by deleting rows.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peewee

from ..database import Session, Store
from ..errors import FileStoreError, LocalchatError, NotFound, StoreCorrupt
from ..files.store import repair_file_store, verify_file_store
from ..search.index import INDEX_TABLES, rebuild_search_index

__all__ = ["Finding", "DoctorReport", "check_store", "OK", "WARNING", "PROBLEM"]

OK, WARNING, PROBLEM = "ok", "warning", "problem"

#: A WAL bigger than this is reported (a checkpoint, or ``--repair``, shrinks it).
WAL_WARN_BYTES = 64 * 2**20
#: Free pages above this share of the file (and 16 MiB) are reported.
FREE_WARN_SHARE = 0.25
FREE_WARN_BYTES = 16 * 2**20
#: At most this many lines of integrity_check output are kept.
INTEGRITY_LINES = 20

_FAILURES = (LocalchatError, peewee.PeeweeException, sqlite3.Error, OSError)


@dataclass(frozen=True)
class Finding:
    """One result: ``check`` (what was looked at), ``level`` (ok | warning | problem)."""

    check: str
    level: str
    detail: str
    fixable: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "level": self.level,
            "detail": self.detail,
            "fixable": self.fixable,
            "data": self.data,
        }


@dataclass
class DoctorReport:
    """What :func:`check_store` found (and, with ``repair=True``, did)."""

    path: str
    findings: list[Finding] = field(default_factory=list)
    #: What ``repair=True`` did, one sentence each (empty without it).
    repairs: list[str] = field(default_factory=list)
    repaired: bool = False

    def add(self, check: str, level: str, detail: str, **kw: Any) -> None:
        self.findings.append(Finding(check, level, detail, **kw))

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.level == PROBLEM]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == WARNING]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        """0 healthy (warnings allowed), 1 problems found."""
        return 0 if self.ok else 1

    def of(self, check: str) -> list[Finding]:
        return [f for f in self.findings if f.check == check]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "findings": [f.to_dict() for f in self.findings],
            "repaired": self.repaired,
            "repairs": self.repairs,
        }


def check_store(
    store: Store, *, repair: bool = False, hashes: bool = False, full: bool = False
) -> DoctorReport:
    """Check ``store``; ``repair=True`` also fixes what is safe and checks again.

    Raises :class:`~localchat.errors.NotFound` when there is no store and
    :class:`~localchat.errors.ForeignDatabase` for another application's file
    (the doctor could not run); everything else it finds is in the report.
    """
    if not store.exists():
        raise NotFound(f"there is no store at {store.config.describe()}: nothing to check.")
    report = _examine(store, hashes=hashes, full=full)
    if repair:
        done = _repair(store, report)
        report = _examine(store, hashes=hashes, full=full)
        report.repaired, report.repairs = True, done
    return report


@contextlib.contextmanager
def _guard(report: DoctorReport, check: str) -> Iterator[None]:
    """A failure of one check is a problem of the store, not of the doctor."""
    try:
        yield
    except _FAILURES as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        report.add(check, PROBLEM, f"could not be checked: {text}")


def _examine(store: Store, *, hashes: bool, full: bool) -> DoctorReport:
    report = DoctorReport(store.config.describe())
    if store.is_sqlite:
        try:
            store.check_file()
        except StoreCorrupt as exc:
            report.add("file", PROBLEM, str(exc))
            return report
        _permissions(store, report)
    at_head = False
    with _guard(report, "schema"):
        at_head = _schema(store, report)
    if report.of("schema") and report.of("schema")[-1].detail.startswith("could not"):
        return report
    with _guard(report, "integrity"), _reading(store, at_head) as (db, s):
        if store.is_sqlite:
            with _guard(report, "integrity"):
                _integrity(db, report, full)
            with _guard(report, "foreign_keys"):
                _foreign_keys(db, report)
            with _guard(report, "fts"):
                _indexes(db, report)
            with _guard(report, "free_pages"):
                _free_pages(db, report)
        if s is not None:
            with _guard(report, "files"):
                _files(s, report, hashes)
        else:
            report.add("files", WARNING, "not checked: the schema is not at the newest version")
    if store.is_sqlite and full and at_head:
        with _guard(report, "fts"):
            _indexes_full(store, report)
    if store.is_sqlite:
        _wal(store, report)
    return report


@contextlib.contextmanager
def _reading(store: Store, at_head: bool) -> Iterator[tuple[peewee.Database, Session | None]]:
    """A read session (or, before migrations, the read connection with no session)."""
    if at_head:
        with store.read_session() as s:
            yield s.db, s
        return
    db = store.read_db
    with db.connection_context():
        yield db, None


def _schema(store: Store, report: DoctorReport) -> bool:
    states = store.migration_status()
    applied = [m.name for m in states if m.applied]
    pending = [m.name for m in states if not m.applied]
    unknown = [m.name for m in states if not m.known]
    version = applied[-1] if applied else "none"
    data = {"version": version, "pending": pending, "unknown": unknown}
    if unknown:
        report.add(
            "schema",
            PROBLEM,
            f"migrated by a newer localchat ({', '.join(unknown)}): upgrade localchat",
            data=data,
        )
    elif pending:
        report.add(
            "schema",
            PROBLEM,
            f"at {version}; pending {', '.join(pending)}: run `localchat migrate up`",
            data=data,
        )
    else:
        report.add("schema", OK, f"at {version}, nothing pending", data=data)
    return not pending and not unknown


def _integrity(db: peewee.Database, report: DoctorReport, full: bool) -> None:
    pragma = "integrity_check" if full else "quick_check"
    rows = [r[0] for r in db.execute_sql(f"PRAGMA {pragma}({INTEGRITY_LINES})").fetchall()]
    if rows == ["ok"]:
        report.add("integrity", OK, f"{pragma}: ok")
    else:
        shown = "; ".join(rows[:5]) + (f" (and {len(rows) - 5} more)" if len(rows) > 5 else "")
        report.add(
            "integrity",
            PROBLEM,
            f"{pragma}: the database is damaged: {shown}",
            data={"messages": rows},
        )


def _foreign_keys(db: peewee.Database, report: DoctorReport) -> None:
    rows = db.execute_sql("PRAGMA foreign_key_check").fetchall()
    if not rows:
        report.add("foreign_keys", OK, "every reference names an existing row")
        return
    by_table: dict[tuple[str, str], list[int]] = {}
    for table, rowid, parent, _fkid in rows:
        by_table.setdefault((table, parent), []).append(rowid)
    for (table, parent), ids in sorted(by_table.items()):
        shown = ", ".join(map(str, ids[:10])) + (" ..." if len(ids) > 10 else "")
        report.add(
            "foreign_keys",
            PROBLEM,
            f"{len(ids)} {table} row(s) name a missing {parent} (rowid {shown}); "
            "never deleted by --repair: restore the parent or delete them yourself",
            data={"table": table, "parent": parent, "rowids": ids},
        )


def _indexes(db: peewee.Database, report: DoctorReport) -> None:
    tables = set(db.get_tables())
    for index, table in INDEX_TABLES.items():
        if index not in tables:
            report.add("fts", WARNING, f"{index}: no full-text index (search is unavailable)")
            continue
        missing = db.execute_sql(
            f'SELECT count(*) FROM "{table}" t WHERE NOT EXISTS '
            f'(SELECT 1 FROM "{index}_docsize" d WHERE d.id = t.id)'
        ).fetchone()[0]
        extra = db.execute_sql(
            f'SELECT count(*) FROM "{index}_docsize" d WHERE NOT EXISTS '
            f'(SELECT 1 FROM "{table}" t WHERE t.id = d.id)'
        ).fetchone()[0]
        if missing or extra:
            report.add(
                "fts",
                PROBLEM,
                f"{index} disagrees with {table}: {missing} row(s) not indexed, {extra} "
                "indexed row(s) gone; --repair rebuilds it",
                fixable=True,
                data={"index": index, "not_indexed": missing, "stale": extra},
            )
        else:
            report.add("fts", OK, f"{index}: every {table} row indexed", data={"index": index})


def _indexes_full(store: Store, report: DoctorReport) -> None:
    """FTS5's own ``integrity-check`` (index against content); takes the write lock."""
    db = store.db
    with db.connection_context():
        tables = set(db.get_tables())
        for index in INDEX_TABLES:
            if index not in tables:
                continue
            try:
                with db.atomic():
                    db.execute_sql(
                        f"INSERT INTO {index}({index}, rank) VALUES ('integrity-check', 1)"
                    )
            except peewee.DatabaseError as exc:
                report.add(
                    "fts",
                    PROBLEM,
                    f"{index}: FTS5 integrity-check failed ({exc}); --repair rebuilds it",
                    fixable=True,
                    data={"index": index},
                )


def _free_pages(db: peewee.Database, report: DoctorReport) -> None:
    pages = db.execute_sql("PRAGMA page_count").fetchone()[0]
    free = db.execute_sql("PRAGMA freelist_count").fetchone()[0]
    size = db.execute_sql("PRAGMA page_size").fetchone()[0]
    data = {"pages": pages, "free_pages": free, "page_size": size, "free_bytes": free * size}
    detail = f"{free} of {pages} pages free ({free * size} bytes)"
    if pages and free / pages > FREE_WARN_SHARE and free * size > FREE_WARN_BYTES:
        report.add("free_pages", WARNING, detail + ": `localchat prune --vacuum` gives it back",
                   data=data)  # fmt: skip
    else:
        report.add("free_pages", OK, detail, data=data)


def _wal(store: Store, report: DoctorReport) -> None:
    wal = Path(f"{store.path}-wal")
    try:
        size = wal.stat().st_size
    except FileNotFoundError:
        size = 0
    level = WARNING if size > WAL_WARN_BYTES else OK
    report.add("wal", level, f"write-ahead log: {size} bytes", fixable=size > 0,
               data={"bytes": size})  # fmt: skip


def _permissions(store: Store, report: DoctorReport) -> None:
    assert store.path is not None
    paths = [store.path, Path(f"{store.path}-wal"), Path(f"{store.path}-shm")]
    if store.files_dir is not None:
        paths.append(store.files_dir)
    found = False
    for path in paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        if not os.access(path, os.R_OK | os.W_OK):
            found = True
            report.add("permissions", PROBLEM, f"{path}: not readable and writable by this user")
        elif stat.S_IMODE(st.st_mode) & 0o077:
            found = True
            mode = oct(stat.S_IMODE(st.st_mode))
            report.add(
                "permissions",
                WARNING,
                f"{path}: mode {mode}, open to other users (chmod go-rwx)",
                data={"path": str(path), "mode": mode},
            )
    if not found:
        report.add("permissions", OK, "database and files private to this user")


def _files(s: Session, report: DoctorReport, hashes: bool) -> None:
    try:
        found = verify_file_store(s, hashes=hashes)
    except FileStoreError as exc:
        report.add("files", PROBLEM, str(exc))
        return
    for issue in found.issues:
        ids = ", ".join(map(str, issue.document_ids))
        used = f" (documents {ids})" if ids else ""
        data = {"kind": issue.kind, "name": issue.name, "path": issue.path}
        if issue.kind == "foreign":
            report.add("files", WARNING, f"foreign file {issue.path}: never removed", data=data)
        elif issue.kind == "orphan":
            why = "--repair removes it" if found.cleanable else found.note
            report.add("files", PROBLEM, f"orphan file {issue.path}: {why}",
                       fixable=found.cleanable, data=data)  # fmt: skip
        else:
            extra = f": {issue.detail}" if issue.detail else ""
            report.add("files", PROBLEM, f"{issue.kind} {issue.path}{used}{extra}", data=data)
    if found.ok:
        how = "sizes and sha256" if hashes else "sizes"
        report.add("files", OK, f"{found.documents} documents, {found.files} files agree ({how})")


def _repair(store: Store, report: DoctorReport) -> list[str]:
    done: list[str] = []
    sound = not report.of("file") and all(f.level == OK for f in report.of("integrity"))
    at_head = any(f.level == OK for f in report.of("schema"))
    if not (sound and at_head):
        why = "the database is damaged" if not sound else "migrations are pending"
        return [f"nothing repaired: {why} (see docs/maintenance.md)"]
    rebuild = any(f.check == "fts" and f.fixable and f.level == PROBLEM for f in report.findings)
    orphans = any(
        f.check == "files" and f.fixable and f.data.get("kind") == "orphan" for f in report.findings
    )
    if rebuild or orphans:
        with store.session() as s:
            if rebuild:
                done += [f"rebuilt the full-text index {n}" for n in rebuild_search_index(s)]
            if orphans:
                fixed = repair_file_store(s, dry_run=False, hashes=False)
                done += [f"removed orphan file {n}" for n in fixed.removed]
    if store.is_sqlite:
        with store.db.connection_context():
            busy, log, moved = store.db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            done.append(f"checkpointed {moved} of {log} WAL pages (readers kept the rest)")
        else:
            done.append("checkpointed and truncated the write-ahead log")
    return done or ["nothing to repair"]
