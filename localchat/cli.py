"""The ``localchat`` command: a thin layer over the library's own functions.

    $ localchat init                 # create or upgrade the per-user store
    $ localchat status --json        # path, schema version, pending, row counts
    $ localchat migrate status       # exit status 1 when migrations are pending
    $ localchat --db /tmp/x.db migrate down --target 0001_initial --yes
    $ localchat files verify         # exit status 1 when rows and files disagree
    $ localchat export --out all.jsonl           # the whole store (docs/portability.md)
    $ localchat import conversations.zip --user ada@example.org --dry-run
    $ localchat backup /backups/     # one zip: a consistent snapshot and every file
    $ localchat restore --yes /backups/localchat-backup-20261130T174500Z.zip
    $ localchat chat                 # the Textual chat client (pip install 'localchat[app]')

Every command takes ``--db PATH`` (or a URL) and ``--app NAME``. Errors print
one ``error: ...`` line and exit 2 (a traceback only with ``-v``). Commands
that only read (``status``, ``path``, ``migrate status``, ``files verify``,
``search``, ``export``, ``backup``) use read sessions: they never wait for the app's
writes, never block them and never change any file.
argparse, not click: the runtime dependencies stay peewee and platformdirs.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__, schema
from .backup import BackupResult, RestoreResult, backup_store, restore_store
from .config import DEFAULT_APP_NAME
from .database import Store, open_store
from .errors import LocalchatError
from .export import export_messages_jsonl, open_export_file
from .files.store import FileStoreReport, repair_file_store, verify_file_store
from .maintenance import (
    STATS_PERIODS,
    DoctorReport,
    PruneReport,
    StatsReport,
    check_store,
    plot_stats,
    prune,
    store_stats,
    vacuum_store,
)
from .portable import (
    FORMATS,
    ExportFilter,
    ImportReport,
    export_markdown,
    export_store,
    import_path,
)
from .progress import TerminalProgress
from .search import search_messages

__all__ = ["main", "build_parser"]


def _store(args: argparse.Namespace) -> Store:
    target = getattr(args, "db", None)
    app = getattr(args, "app", DEFAULT_APP_NAME)
    if target and "://" in target:
        return open_store(url=target, app_name=app)
    return open_store(target, app_name=app)


def _schema_version(store: Store) -> str:
    applied = [m.name for m in store.migration_status() if m.applied]
    return applied[-1] if applied else "none"


def _report(store: Store) -> dict[str, Any]:
    states = store.migration_status()
    return {
        "path": store.config.describe(),
        "files_dir": str(store.files_dir) if store.files_dir else None,
        "source": store.config.source,
        "exists": store.exists(),
        "schema_version": _schema_version(store),
        "pending_migrations": [m.name for m in states if not m.applied],
        "tables": store.table_counts(),
    }


def _print_report(report: dict[str, Any]) -> None:
    print(f"database:       {report['path']}")
    if report["files_dir"]:
        print(f"files:          {report['files_dir']}")
    print(f"schema version: {report['schema_version']}")
    pending = report["pending_migrations"]
    print(f"pending:        {', '.join(pending) if pending else 'none'}")
    if not report["exists"]:
        print("(the database does not exist yet; `localchat init` creates it)")
    for table, count in report["tables"].items():
        print(f"  {table:<18} {count:>8}")


def _print_names(verb: str, names: list[str]) -> None:
    print("\n".join(f"{verb} {n}" for n in names) if names else "nothing to do.")


def cmd_init(args: argparse.Namespace) -> int:
    store = _store(args)
    _print_names("applied", store.upgrade())
    _print_report(_report(store))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    report = _report(_store(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    return 0


def cmd_path(args: argparse.Namespace) -> int:
    store = _store(args)
    print(store.config.describe())
    if store.files_dir is not None:
        print(store.files_dir)
    return 0


def _confirm_revert(store: Store, plan: list[str], yes: bool) -> bool:
    """Say what reverting ``plan`` loses and where the copy goes; True to go ahead."""
    say = functools.partial(print, file=sys.stderr)
    say(f"This reverts {', '.join(plan)} on {store.config.describe()}.")
    counts = store.table_counts()
    rows = sum(counts.values())
    if plan[-1] == schema.HISTORY_FIRST:
        held = ", ".join(f"{n} {t}" for t, n in counts.items() if n) or "no rows"
        say(f"Every localchat table is dropped with all it holds ({rows} rows: {held}).")
    else:
        say("What these migrations added (tables, columns, indexes) is dropped with its data.")
    if store.is_sqlite:
        say(f"A copy is taken first: {schema.backup_path(store, 'revert-' + plan[0])}")
    else:
        say("No copy can be taken of a PostgreSQL database: back it up first (pg_dump).")
    if yes:
        return True
    if not sys.stdin.isatty():
        raise LocalchatError("refusing to revert without confirmation; pass --yes to go ahead.")
    return input("Go ahead? [y/N] ").strip().lower() in {"y", "yes"}


def cmd_migrate(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.action == "up":
        _print_names("applied", store.upgrade(args.target))
        return 0
    if args.action == "down":
        plan = schema.planned_reverts(store, args.target)
        if plan and not _confirm_revert(store, plan, args.yes):
            print("nothing was changed.")
            return 1
        _print_names("reverted", store.downgrade(args.target) if plan else [])
        return 0
    states = store.migration_status()
    for m in states:
        mark = "applied" if m.applied else "pending"
        if not m.known:
            mark = "unknown (newer localchat)"
        print(f"[{mark}] {m.name}")
    return 1 if any(not m.applied for m in states) else 0


def _print_files(report: FileStoreReport, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    print(f"files: {report.folder}  ({report.documents} documents, {report.files} files)")
    for issue in report.issues:
        ids = ", ".join(map(str, issue.document_ids))
        print(f"  {issue.kind:<14} {issue.path}" + (f"  (documents {ids})" if ids else ""))
    verb = "would remove" if report.dry_run else "removed"
    for name in report.removed:
        print(f"  {verb} {name}")
    if report.note and report.orphans:
        print(f"  {report.note}")
    left = len(report.remaining)
    print(f"{left} problem(s) left." if left else "ok: rows and files agree.")


def cmd_files(args: argparse.Namespace) -> int:
    store = _store(args)
    if not store.exists():
        print("the database does not exist yet: nothing to check.")
        return 0
    with store.session(readonly=args.action == "verify") as s:
        if args.action == "verify":
            report = verify_file_store(s, hashes=not args.quick)
        else:
            report = repair_file_store(s, dry_run=not args.apply, hashes=not args.quick)
    _print_files(report, args.json)
    return 1 if report.remaining else 0


def _export_filter(args: argparse.Namespace) -> ExportFilter:
    opt = functools.partial(getattr, args)
    return ExportFilter(
        user=opt("user", None),
        conversation=opt("conversation", None),
        since=opt("since", None),
        until=opt("until", None),
        archived=opt("archived", None),
    )


def cmd_export(args: argparse.Namespace) -> int:
    store, out, fmt = _store(args), getattr(args, "out", None), getattr(args, "format", "jsonl")
    say = functools.partial(print, file=sys.stderr if not out or fmt == "messages" else sys.stdout)
    if not store.exists():
        print("the database does not exist yet: nothing to export.", file=sys.stderr)
        return 0
    if fmt == "markdown":
        with store.read_session() as s:
            n = export_markdown(s, out or ".", _export_filter(args))
        summary: dict[str, Any] = {"format": fmt, "out": out or ".", "conversations": n}
        say(json.dumps(summary) if args.json else f"wrote {n} conversation(s) to {out or '.'}.")
        return 0
    target = open_export_file(out) if out else contextlib.nullcontext(sys.stdout)
    with store.read_session() as s, target as fp:
        if fmt == "messages":  # the per-message stream of earlier releases
            conv = getattr(args, "conversation", None)
            conv_id = int(conv) if conv is not None and conv.isdigit() else conv
            n = export_messages_jsonl(s, fp, conversation_id=conv_id)
            print(f"exported {n} message(s) to {out or 'standard output'}.", file=sys.stderr)
            return 0
        with TerminalProgress("exported", enabled=not args.quiet, unit="records") as tick:
            written = export_store(s, fp, _export_filter(args), as_json=fmt == "json",
                                   include_secrets=args.secrets, progress=tick)  # fmt: skip
    where = out or "standard output"
    if args.json:
        say(json.dumps({"format": fmt, "out": where, "records": written}))
    elif not args.quiet:
        say(f"exported {_counted(written)} to {where}.")
    return 0


def _counted(counts: dict[str, int]) -> str:
    """``{"message": 2, "user": 1}`` -> ``"2 messages, 1 user"`` (``"nothing"`` when empty)."""
    said = [f"{n} {kind}{'' if n == 1 else 's'}" for kind, n in counts.items() if n]
    return ", ".join(said) or "nothing"


def _print_import(report: ImportReport) -> None:
    verb = "would add" if report.dry_run else "added"
    print(f"{report.source} ({report.format}): {verb} {_counted(report.added)}.")
    if report.skipped:
        print(f"already in the store: {_counted(report.skipped)}.")


def cmd_import(args: argparse.Namespace) -> int:
    store = _store(args)

    def call(tick: TerminalProgress) -> ImportReport:
        with store.session() as s:
            return import_path(s, args.path, format=args.format, user=args.user,
                               dry_run=args.dry_run, progress=tick,
                               attachments_dir=args.attachments)  # fmt: skip

    return _with_progress(args, "read", call, _print_import, unit="records")


def cmd_search(args: argparse.Namespace) -> int:
    store, opt = _store(args), functools.partial(getattr, args)
    if not store.exists():
        return 0  # nothing stored, nothing found: a search never creates the store
    with store.read_session() as s:
        filters = {"user_id": opt("user", None), "conversation_id": opt("conversation", None)}
        hits = search_messages(s, args.query, **filters, limit=opt("limit", 20),
                               advanced=opt("advanced", False))  # fmt: skip
        rows = [h.to_dict() for h in hits]
    if opt("json", False):
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    for r in [] if opt("json", False) else rows:
        title, msg = r["conversation"]["title"] or "(untitled)", r["message"]
        print(f"{title} #{msg['id']} {msg['role']}: {r['snippet']}")
    return 0


def _print_doctor(report: DoctorReport) -> None:
    print(f"doctor: {report.path}")
    for f in report.findings:
        print(f"  [{f.level}] {f.check}: {f.detail}")
    for line in report.repairs:
        print(f"  repair: {line}")
    n = len(report.problems)
    print(f"{n} problem(s) found." if n else "healthy.")


def cmd_doctor(args: argparse.Namespace) -> int:
    report = check_store(_store(args), repair=args.repair, hashes=args.hashes, full=args.full)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_doctor(report)
    return report.exit_code


def _print_stats(report: StatsReport) -> None:
    head = f"{report.by:<10} {'model':<24} {'msgs':>6} {'convs':>6} {'prompt':>9} {'compl':>9}"
    print(f"{head} {'total':>10} {'avg ms':>8}")
    for r in report.responses:
        avg = "" if r["avg_completion_ms"] is None else f"{r['avg_completion_ms']:.0f}"
        print(f"{r['period']:<10} {r['model']:<24} {r['messages']:>6} {r['conversations']:>6} "
              f"{r['tokens_prompt']:>9} {r['tokens_completion']:>9} {r['tokens_total']:>10} "
              f"{avg:>8}")  # fmt: skip
    t = report.totals["responses"]
    print(f"total: {t['messages']} messages, {t['tokens_total']} tokens "
          f"({t['tokens_prompt']} prompt, {t['tokens_completion']} completion)")  # fmt: skip
    a = report.totals["audit"]
    if a["calls"]:
        print(f"audit log: {a['calls']} calls, {a['tokens']} tokens, {a['errors']} errors")


def cmd_stats(args: argparse.Namespace) -> int:
    store, opt = _store(args), functools.partial(getattr, args)
    if not store.exists():
        print("the database does not exist yet: no statistics.")
        return 0
    with store.read_session() as s:
        report = store_stats(s, by=args.by, since=opt("since", None), until=opt("until", None),
                             model=opt("model", None), user=opt("user", None))  # fmt: skip
    if args.plot:
        plot_stats(report, args.plot)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_stats(report)
    if args.plot:
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    store, opt = _store(args), functools.partial(getattr, args)
    if not store.exists():
        print("the database does not exist yet: nothing to prune.")
        return 0
    days = opt("older_than", None)
    criteria = {
        "older_than": None if days is None else dt.timedelta(days=days),
        "archived_only": args.archived,
        "trashed_only": args.trashed,
        "user_id": opt("user", None),
    }
    total = PruneReport(dry_run=not args.apply)
    if not args.apply:
        with store.read_session() as s:
            total = prune(s, **criteria, dry_run=True)
    while args.apply:  # short transactions: the app writes in between
        with store.session() as s:
            step = prune(s, **criteria, dry_run=False, limit=args.batch)
        total.add(step)
        if step.conversations < args.batch:
            break
    vacuum = vacuum_store(store) if args.vacuum and args.apply else None
    if args.json:
        print(json.dumps(total.to_dict() | {"vacuum": vacuum}, indent=2))
        return 0
    verb = "deleted" if args.apply else "would delete"
    print(f"{verb} {total.conversations} conversation(s), {total.messages} message(s), "
          f"{total.responses} response(s), {total.documents} document(s); "
          f"{total.files} file(s), {total.bytes} bytes freed.")  # fmt: skip
    if not args.apply:
        print("a dry run: nothing was changed; --apply deletes.")
    if vacuum:
        print(vacuum)
    return 0


def _when(text: str) -> dt.datetime:
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    return at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)


def _where(args: argparse.Namespace) -> dict[str, Any]:
    target = getattr(args, "db", None)
    app = getattr(args, "app", DEFAULT_APP_NAME)
    if target and "://" in target:
        return {"url": target, "app_name": app}
    return {"db_path": target, "app_name": app}


def _print_backup(r: BackupResult) -> None:
    print(f"backup: {r.archive}")
    print(f"  database {r.database_bytes} bytes (schema {r.schema_version}), "
          f"{r.files} file(s) {r.file_bytes} bytes, in {r.seconds:.2f} s")  # fmt: skip
    for s in r.skipped:
        print(f"  skipped {s['name']}: {s['reason']}", file=sys.stderr)


def _with_progress(
    args: argparse.Namespace, label: str, call: Any, show: Any, unit: str = "files"
) -> int:
    """Run ``call(progress)`` with a progress line (a terminal only), then print its result."""
    with TerminalProgress(label, enabled=not args.quiet, unit=unit) as bar:
        result = call(bar)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    elif not args.quiet:
        show(result)
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    call = functools.partial(backup_store, args.path, **_where(args))
    return _with_progress(args, "backup", lambda bar: call(progress=bar), _print_backup)


def _print_restore(r: RestoreResult) -> None:
    print(f"restored {r.archive}")
    print(f"  into {r.database} (schema {r.schema_version}), {r.files} file(s) in {r.files_dir}")
    if r.upgraded:
        print(f"  upgraded through {', '.join(r.upgraded)}")
    if r.kept:
        print(f"  the previous store is kept as {r.kept} (and {r.kept}-files)")


def cmd_restore(args: argparse.Namespace) -> int:
    store = _store(args)
    if store.is_sqlite and store.exists() and not args.yes:
        say = functools.partial(print, file=sys.stderr)
        say(f"This replaces {store.config.describe()} by the store in {args.archive};")
        say("the current one is kept beside it (<database>.pre-restore-<time>.bak).")
        if not sys.stdin.isatty():
            raise LocalchatError("refusing to restore without confirmation; pass --yes.")
        if input("Go ahead? [y/N] ").strip().lower() not in {"y", "yes"}:
            print("nothing was changed.")
            return 1
    call = functools.partial(restore_store, args.archive, **_where(args))
    return _with_progress(args, "restore", lambda bar: call(progress=bar), _print_restore)


def cmd_chat(args: argparse.Namespace) -> int:
    try:  # the app extra: textual is not a runtime dependency
        from .app.ui import run
    except ImportError as exc:
        print(f"error: the chat app needs textual ({exc}): pip install 'localchat[app]'",
              file=sys.stderr)  # fmt: skip
        return 2
    return run(getattr(args, "db", None), getattr(args, "app", DEFAULT_APP_NAME))


def build_parser() -> argparse.ArgumentParser:
    # SUPPRESS: options given before the command are not reset by the subparser.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument(
        "--db", metavar="PATH", help="database file or URL (default: the per-user store)"
    )
    common.add_argument(
        "--app", metavar="NAME", help="application name: whose per-user store (default: localchat)"
    )
    common.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    parser = argparse.ArgumentParser(
        prog="localchat", parents=[common], description="Storage for local LLM chat clients."
    )
    parser.add_argument("--version", action="version", version=f"localchat {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, fn: Callable[[argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(func=fn)
        return p

    add("init", cmd_init, "create or upgrade the store and show what it holds")
    p = add("status", cmd_status, "show path, schema version, pending migrations and row counts")
    p.add_argument("--json", action="store_true", help="print JSON")
    add("path", cmd_path, "print the database file and its file folder (<database>-files)")
    p = add("migrate", cmd_migrate, "apply, revert or list schema migrations")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument(
        "--target",
        metavar="NAME",
        help="the version to end at, up and down alike: up applies through NAME, down reverts "
        "every migration after NAME (NAME stays applied; 'zero' reverts all). Without it, "
        "up applies all and down reverts the newest one.",
    )
    p.add_argument("--yes", action="store_true", help="down: do not ask for confirmation")
    p = add("files", cmd_files, "check the document files against the database, or repair")
    p.add_argument("action", choices=["verify", "repair"])
    p.add_argument("--apply", action="store_true", help="repair: really delete orphan files")
    p.add_argument("--quick", action="store_true", help="compare sizes only, not sha256")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add("export", cmd_export, "export the store: versioned JSON Lines, JSON or Markdown")
    p.add_argument(
        "--format",
        choices=["jsonl", "json", "markdown", "messages"],
        default="jsonl",
        help="jsonl: every table, one record a line (default; what import reads); "
        "json: the same records as one JSON document; markdown: one file per "
        "conversation (--out is a folder); messages: only messages, one a line",
    )
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument("--conversation", metavar="ID", help="only this conversation (id or uuid)")
    p.add_argument(
        "--user", metavar="USER", help="only this user's conversations (id, uuid, email)"
    )
    p.add_argument(
        "--since",
        type=_when,
        metavar="TIME",
        help="conversations updated at or after TIME (ISO 8601)",
    )
    p.add_argument("--until", type=_when, metavar="TIME", help="conversations updated before TIME")
    p.add_argument(
        "--archived", action="store_true", default=None, help="only archived conversations"
    )
    p.add_argument(
        "--active", dest="archived", action="store_false", help="only active conversations"
    )
    p.add_argument("--secrets", action="store_true", help="also export password hashes")
    p.add_argument("--quiet", action="store_true", help="no progress and no summary")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p = add("import", cmd_import, "import a localchat export, a ChatGPT export or an llm logs.db")
    p.add_argument("path", help="the file: .jsonl export, conversations.json or its zip, logs.db")
    p.add_argument("--format", choices=list(FORMATS), default="auto", help="default: detected")
    p.add_argument("--user", metavar="EMAIL", help="the imported conversations belong to this user")
    p.add_argument(
        "--dry-run", action="store_true", help="report what would be added; change nothing"
    )
    p.add_argument("--attachments", metavar="DIR", help="llm: look here for attached files")
    p.add_argument("--quiet", action="store_true", help="no progress and no summary")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p = add("search", cmd_search, "full-text search over messages, best matches first")
    p.add_argument("query", help="words to find (plain text; --advanced for FTS5 syntax)")
    p.add_argument("--user", metavar="ID", help="only this user's conversations (id or uuid)")
    p.add_argument("--conversation", metavar="ID", help="only this conversation (id or uuid)")
    p.add_argument("--limit", type=int, default=20, help="how many hits (default 20)")
    p.add_argument("--advanced", action="store_true", help="the query is FTS5 query syntax")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add("backup", cmd_backup, "write one zip archive: a consistent snapshot and every file")
    p.add_argument("path", nargs="?", help="archive to write, or a folder (default: here)")
    p.add_argument("--quiet", action="store_true", help="no progress and no summary")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add("restore", cmd_restore, "replace the store by an archive's (the old one is kept)")
    p.add_argument("archive", help="an archive written by `localchat backup`")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--quiet", action="store_true", help="no progress and no summary")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add("doctor", cmd_doctor, "check the store (exit 1: problems found, 2: could not run)")
    p.add_argument("--repair", action="store_true", help="fix what is safe; never deletes a row")
    p.add_argument("--hashes", action="store_true", help="also hash every document file")
    p.add_argument("--full", action="store_true", help="integrity_check and FTS5 integrity-check")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add("stats", cmd_stats, "messages, tokens and times per model and day, week or month")
    p.add_argument("--by", choices=STATS_PERIODS, default="day", help="the period (default day)")
    p.add_argument("--model", metavar="NAME", help="only this model")
    p.add_argument("--user", metavar="USER", help="only this user (id, uuid or email)")
    p.add_argument("--since", type=_when, metavar="TIME", help="from TIME (ISO 8601)")
    p.add_argument("--until", type=_when, metavar="TIME", help="before TIME")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--plot", metavar="PATH.png", help="also draw a PNG chart (needs matplotlib)")
    p = add("prune", cmd_prune, "delete old, archived or trashed conversations for good")
    p.add_argument("--older-than", type=int, metavar="DAYS", help="not updated for DAYS days")
    p.add_argument("--archived", action="store_true", help="only archived conversations")
    p.add_argument("--trashed", action="store_true", help="only conversations in the trash")
    p.add_argument("--user", metavar="USER", help="only this user's conversations (id or uuid)")
    p.add_argument("--apply", action="store_true", help="really delete (default: a dry run)")
    p.add_argument("--batch", type=int, default=200, help="conversations per transaction")
    p.add_argument("--vacuum", action="store_true", help="then give free pages back")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add("chat", cmd_chat, "the terminal chat client (needs: pip install 'localchat[app]')")
    p.add_argument(
        "--app-name",
        dest="app",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="the same as --app",
    )
    # Feature commands register here.
    return parser


def _error_text(exc: BaseException, args: argparse.Namespace) -> str:
    """One line saying what went wrong (driver messages can span several)."""
    if isinstance(exc, LocalchatError):
        return " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # `localchat ... | head`: the reader left; not an error
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (LocalchatError, OSError) as exc:
        if getattr(args, "verbose", False):
            raise
        print(f"error: {_error_text(exc, args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
