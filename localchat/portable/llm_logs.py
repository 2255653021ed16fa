"""Import the logs of the ``llm`` command-line tool (``logs.db``, llm 0.31 to 0.36).

    from localchat import local_session
    from localchat.portable import import_path

    with local_session() as s:
        import_path(s, "~/.config/io.datasette.llm/logs.db", format="llm")

The file is opened read-only (``mode=ro`` URI, ``query_only``): llm's own
database is never written. Both of llm's storage generations are read:

* llm <= 0.31: ``conversations`` + one ``responses`` row per model call
  (prompt, system, response, options, tokens), with ``prompt_attachments``,
  ``prompt_fragments`` / ``system_fragments``, ``tool_calls`` / ``tool_results``;
* llm >= 0.32: ``threads`` whose tip message's ``parent_hash`` chain is the
  history, ``parts`` (text, reasoning, tool_call, tool_result, attachment;
  fragment text resolved from ``text_ref``) and ``turns`` (one per model call).

A file upgraded from one to the other holds both; a conversation stored in
both (same id) keeps its ``responses`` history and the thread's new turns,
once. Each llm conversation or thread becomes a localchat conversation with
llm's id as ``external_id``, the messages in order (system, user, assistant,
tool), and one response per model call on its assistant message: model
(``resolved_model`` when set), input/output tokens, ``duration_ms``,
options, ``token_details`` (as ``usage_details``). Message metadata keeps
what has no column: ``{"source": "llm", "tool_calls": [...], "tool_results":
[...], "reasoning": "...", "attachments": [...], "fragments": [...],
"turn_id": ..., "schema": {...}}``. Attachments become documents of their
message: with their bytes when stored in the database, or when the file is
still at its path (or in ``attachments_dir`` under the same name), else as
metadata only (a URL, a missing file).
"""

from __future__ import annotations

import datetime as _dt
import json
import mimetypes
import os
import sqlite3
import urllib.parse
import uuid as _uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from .loader import Loader, preview

__all__ = ["llm_records", "open_readonly"]

NAMESPACE = _uuid.UUID("0f6f3bb4-0d76-4a8e-a6c3-9d1b0e2f7a55")


def _uid(*parts: Any) -> str:
    return str(_uuid.uuid5(NAMESPACE, ":".join(("llm", *map(str, parts)))))


def open_readonly(path: str) -> sqlite3.Connection:
    """A read-only connection to someone else's SQLite file (never writes, never migrates)."""
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        conn.execute("PRAGMA query_only = 1")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise ValidationError(f"{path}: not an llm logs.db ({exc}).") from None
    if not ({"responses", "conversations"} <= tables or {"threads", "turns", "messages"} <= tables):
        conn.close()
        raise ValidationError(
            f"{path}: a SQLite database, but not an llm logs.db (no responses or threads table)."
        )
    conn.row_factory = sqlite3.Row
    return conn


def _time(value: Any) -> str | None:
    if not value:
        return None
    try:
        at = _dt.datetime.fromisoformat(str(value).replace(" ", "T"))
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=_dt.timezone.utc)
    return at.isoformat()


def _json(value: Any) -> Any:
    if value is None or value == "":
        return None
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


class _Db:
    """Queries that tolerate the columns older llm versions lack."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.tables = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        self.columns = {
            t: {r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')} for t in self.tables
        }

    def col(self, table: str, column: str) -> str:
        return f'"{column}"' if column in self.columns.get(table, ()) else f'NULL AS "{column}"'

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def has(self, table: str) -> bool:
        return table in self.tables


class _Builder:
    """Collects one conversation's messages, responses and documents as records."""

    def __init__(self, db: _Db, loader: Loader, cid: str, where: str, attachments_dir: str | None):
        self.db, self.loader, self.cid, self.where = db, loader, cid, where
        self.attachments_dir = attachments_dir
        self.messages: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.documents: list[dict[str, Any]] = []

    def message(self, key: str, role: str, text: str, at: str | None, meta: dict[str, Any],
                model: str | None = None) -> dict[str, Any]:  # fmt: skip
        parent = self.messages[-1]["uuid"] if self.messages else None
        record = {
            "type": "message",
            "uuid": _uid(self.cid, key),
            "conversation": _uid(self.cid),
            "parent": parent,
            "role": role,
            "content": text,
            "model": model,
            "metadata": {"source": "llm", **{k: v for k, v in meta.items() if v}},
            "created_at": at,
            "updated_at": at,
        }
        if at is None:
            del record["created_at"], record["updated_at"]
        self.messages.append(record)
        return record

    def response(self, message: dict[str, Any], turn: sqlite3.Row) -> None:
        i, o = turn["input_tokens"], turn["output_tokens"]
        options = _json(turn["options_json"])
        self.responses.append(
            {
                "type": "response",
                "message": message["uuid"],
                "model_used": turn["resolved_model"] or turn["model"] or "unknown",
                "tokens_prompt": i,
                "tokens_completion": o,
                "tokens_total": i + o if i is not None and o is not None else None,
                "completion_time_ms": turn["duration_ms"],
                "options": options if options else {},
                "usage_details": _json(turn["token_details"]),
                "created_at": _time(turn["datetime_utc"]) or message["created_at"],
            }
        )
        message["model"] = turn["model"]
        message["metadata"]["turn_id"] = turn["id"]
        if turn["schema_id"]:
            found = self.db.rows(
                'SELECT "content" FROM "schemas" WHERE "id" = ?', (turn["schema_id"],)
            )
            message["metadata"]["schema"] = _json(found[0][0]) if found else turn["schema_id"]

    def attachment(self, message: dict[str, Any], att: sqlite3.Row, order: int) -> None:
        info = {k: att[k] for k in ("id", "type", "path", "url") if att[k]}
        message["metadata"].setdefault("attachments", []).append(info)
        name = os.path.basename(att["path"] or urllib.parse.urlparse(att["url"] or "").path)
        if not name:  # stored by content: no name of its own
            ext = mimetypes.guess_extension(att["type"] or "") or ""
            name = f"attachment-{str(att['id'])[:12]}{ext}"
        doc: dict[str, Any] = {
            "type": "document",
            "uuid": _uid(self.cid, message["uuid"], "attachment", att["id"], order),
            "filename": name[:255],
            "mime_type": att["type"],
            "tags": ["llm"],
            "conversation": message["conversation"],
            "message": message["uuid"],
            "created_at": message["created_at"],
            "updated_at": message["created_at"],
        }
        where = f"{self.where} attachment {att['id']}"
        tmp = Path(self.loader.tmp.name) / f"attachment-{doc['uuid']}"
        source = None
        if att["content"] is not None:
            tmp.write_bytes(bytes(att["content"]))
            source = tmp
        elif att["path"]:
            for candidate in (
                att["path"],
                os.path.join(self.attachments_dir or "", os.path.basename(att["path"])),
            ):
                if self.attachments_dir or candidate == att["path"]:
                    if os.path.isfile(candidate):
                        source = Path(candidate)
                        break
        if source is not None:
            doc["sha256"] = self.loader.add_file(where, source)
            doc["size"] = source.stat().st_size
            doc["file"] = True
        else:
            doc["recorded_path"] = att["path"] or att["url"]
        if tmp.exists():
            tmp.unlink()
        self.documents.append(doc)


# -- llm <= 0.31: responses --------------------------------------------------
def _legacy(db: _Db, b: _Builder) -> None:
    cols = ", ".join(
        db.col("responses", c)
        for c in ("id", "model", "prompt", "system", "options_json", "response", "duration_ms",
                  "datetime_utc", "input_tokens", "output_tokens", "token_details", "schema_id",
                  "resolved_model", "reasoning")
    )  # fmt: skip
    system_seen = False
    for r in db.rows(
        f'SELECT {cols} FROM "responses" WHERE "conversation_id" = ? ORDER BY "id"', (b.cid,)
    ):
        at = _time(r["datetime_utc"])
        system = _fragments(db, "system_fragments", r["id"], r["system"])
        if system[0] and not system_seen:
            b.message(f"{r['id']}:system", "system", system[0], at, {"fragments": system[1]})
            system_seen = True
        results = _tool_rows(db, "tool_results", r["id"], ("name", "output", "tool_call_id"))
        prompt = _fragments(db, "prompt_fragments", r["id"], r["prompt"])
        if results:
            text = "\n".join(str(t["output"]) for t in results)
            b.message(f"{r['id']}:tool", "tool", text, at, {"tool_results": results})
        if prompt[0] or not results:
            user = b.message(f"{r['id']}:user", "user", prompt[0], at, {"fragments": prompt[1]})
            if db.has("prompt_attachments"):
                for order, att in enumerate(
                    _attachments(db, "prompt_attachments", "response_id", r["id"])
                ):
                    b.attachment(user, att, order)
        calls = _tool_rows(db, "tool_calls", r["id"], ("name", "arguments", "tool_call_id"))
        for call in calls:
            call["arguments"] = _json(call["arguments"])
        meta = {"tool_calls": calls, "reasoning": r["reasoning"]}
        reply = b.message(f"{r['id']}:assistant", "assistant", r["response"] or "", at, meta)
        b.response(reply, r)


def _fragments(db: _Db, table: str, response_id: str, text: str | None) -> tuple[str, list[Any]]:
    if not db.has(table):
        return text or "", []
    rows = db.rows(
        f'SELECT f."id", f."hash", f."source", f."content" FROM "{table}" x '
        f'JOIN "fragments" f ON f."id" = x."fragment_id" '
        'WHERE x."response_id" = ? ORDER BY x."order"',
        (response_id,),
    )
    pieces = [r["content"] for r in rows] + ([text] if text else [])
    return "\n".join(pieces), [
        {"id": r["id"], "hash": r["hash"], "source": r["source"]} for r in rows
    ]


def _tool_rows(
    db: _Db, table: str, response_id: str, keys: tuple[str, ...]
) -> list[dict[str, Any]]:
    if not db.has(table):
        return []
    cols = ", ".join(db.col(table, k) for k in keys)
    sql = f'SELECT {cols} FROM "{table}" WHERE "response_id" = ? ORDER BY "id"'
    return [dict(r) for r in db.rows(sql, (response_id,))]


def _attachments(db: _Db, table: str, key: str, value: Any) -> list[sqlite3.Row]:
    return db.rows(
        f'SELECT a."id", a."type", a."path", a."url", a."content" FROM "{table}" x '
        f'JOIN "attachments" a ON a."id" = x."attachment_id" '
        f'WHERE x."{key}" = ? ORDER BY x."order"',
        (value,),
    )


# -- llm >= 0.32: threads, messages, parts, turns ----------------------------
def _chain(db: _Db, tip: str | None, where: str) -> list[sqlite3.Row]:
    out: list[sqlite3.Row] = []
    seen: set[str] = set()
    while tip is not None:
        if tip in seen:
            raise ValidationError(f"{where}: the message chain has a cycle at {tip}.")
        seen.add(tip)
        found = db.rows(
            'SELECT "hash", "parent_hash", "role" FROM "messages" WHERE "hash" = ?', (tip,)
        )
        if not found:
            raise ValidationError(f"{where}: message {tip} is missing from the messages table.")
        out.append(found[0])
        tip = found[0]["parent_hash"]
    return out[::-1]


def _text(db: _Db, part: sqlite3.Row, payload: Any) -> tuple[str, list[Any]]:
    if part["text"] is not None:
        return str(part["text"]), []
    refs = payload.get("text_ref") if isinstance(payload, dict) else None
    pieces, used = [], []
    for ref in refs or []:
        if isinstance(ref, dict) and "literal" in ref:
            pieces.append(str(ref["literal"]))
        elif isinstance(ref, dict) and "fragment" in ref:
            rows = db.rows(
                'SELECT "id", "hash", "source", "content" FROM "fragments" WHERE "id" = ?',
                (ref["fragment"],),
            )
            if rows:
                pieces.append(rows[0]["content"] or "")
                used.append(
                    {"id": rows[0]["id"], "hash": rows[0]["hash"], "source": rows[0]["source"]}
                )
    return "".join(pieces), used


def _thread(db: _Db, b: _Builder, thread: sqlite3.Row, after_legacy: bool) -> None:
    turn_cols = ", ".join(
        db.col("turns", c)
        for c in ("id", "parent_message_hash", "tip_message_hash", "model", "resolved_model",
                  "options_json", "schema_id", "input_tokens", "output_tokens", "token_details",
                  "duration_ms", "datetime_utc")
    )  # fmt: skip
    turns = db.rows(
        f'SELECT {turn_cols} FROM "turns" WHERE "thread_id" = ? ORDER BY "datetime_utc", "id"',
        (thread["id"],),
    )
    chain = _chain(db, thread["tip_message_hash"], b.where)
    position = {m["hash"]: i for i, m in enumerate(chain)}
    ends: dict[int, sqlite3.Row] = {}  # chain index of a turn's tip -> the turn
    for turn in turns:
        end = position.get(turn["tip_message_hash"])
        if end is not None:  # else a turn of another branch of the tree
            ends.setdefault(end, turn)
    added_by: dict[int, sqlite3.Row] = {}  # chain index -> the turn that sent or made it
    for i in range(len(chain)):
        later = [e for e in ends if e >= i]
        if later:
            added_by[i] = ends[min(later)]
    history = 0  # with a responses history: where the thread's own turns begin
    if after_legacy and ends:
        first = ends[min(ends)]
        history = position.get(first["parent_message_hash"], min(ends))
    first_time = _time(turns[0]["datetime_utc"]) if turns else _time(thread["datetime_utc"])
    part_cols = (
        'SELECT "id", "type", "tool_name", "text", "payload" FROM "parts" '
        'WHERE "message_hash" = ? ORDER BY "position"'
    )
    for i, m in enumerate(chain):
        made = added_by.get(i)
        if i < history:
            continue  # the history llm rebuilt from ``responses``: already imported
        at = _time(made["datetime_utc"]) if made is not None else first_time
        texts: list[str] = []
        meta: dict[str, Any] = {"tool_calls": [], "tool_results": [], "fragments": []}
        atts = []
        for part in db.rows(part_cols, (m["hash"],)):
            payload = _json(part["payload"])
            kind = part["type"]
            if kind == "text":
                text, used = _text(db, part, payload)
                texts.append(text)
                meta["fragments"] += used
            elif kind == "reasoning":
                meta["reasoning"] = (meta.get("reasoning") or "") + (part["text"] or "")
            elif kind in ("tool_call", "tool_result"):
                item = dict(payload) if isinstance(payload, dict) else {"payload": payload}
                meta["tool_calls" if kind == "tool_call" else "tool_results"].append(item)
                if kind == "tool_result":
                    texts.append(str(item.get("output", "")))
            elif kind == "attachment":
                ref = payload.get("attachment", {}) if isinstance(payload, dict) else {}
                rows = db.rows(
                    'SELECT "id", "type", "path", "url", "content" FROM "attachments" '
                    'WHERE "id" = ?',
                    (ref.get("id"),),
                )
                atts += rows
            else:
                meta.setdefault("other_parts", []).append(
                    {"type": kind, "text": part["text"], "payload": payload}
                )
        record = b.message(
            f"{thread['id']}:{m['hash']}", str(m["role"]), "\n".join(texts), at, meta
        )
        for order, att in enumerate(atts):
            b.attachment(record, att, order)
        if i in ends and m["role"] == "assistant":
            b.response(record, ends[i])


# -- the whole file ----------------------------------------------------------
def llm_records(
    path: str, loader: Loader, *, attachments_dir: str | os.PathLike[str] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, record) for every conversation of an llm ``logs.db`` (read-only)."""
    conn = open_readonly(path)
    try:
        yield from _records(conn, path, loader, attachments_dir)
    except sqlite3.DatabaseError as exc:  # a damaged file: say so, as a localchat error
        raise ValidationError(f"{path}: cannot be read as an llm logs.db ({exc}).") from None
    finally:
        conn.close()


def _records(
    conn: sqlite3.Connection,
    path: str,
    loader: Loader,
    attachments_dir: str | os.PathLike[str] | None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    db = _Db(conn)
    legacy = {}
    if db.has("conversations"):
        legacy = {
            r["id"]: r
            for r in db.rows('SELECT "id", "name", "model" FROM "conversations" ORDER BY "id"')
        }
    threads = {}
    if db.has("threads"):
        threads = {r["id"]: r for r in db.rows(
            f'SELECT "id", "name", "tip_message_hash", {db.col("threads", "datetime_utc")} '
            'FROM "threads" ORDER BY "id"')}  # fmt: skip
    extra = str(attachments_dir) if attachments_dir is not None else None
    for cid in sorted(set(legacy) | set(threads)):
        where = f"{path}: conversation {cid}"
        b = _Builder(db, loader, cid, where, extra)
        try:
            if cid in legacy:
                _legacy(db, b)
            if cid in threads:
                _thread(db, b, threads[cid], after_legacy=cid in legacy)
        except sqlite3.DatabaseError as exc:
            raise ValidationError(f"{where}: cannot be read ({exc}).") from None
        if not b.messages:
            continue
        yield where, _conversation(cid, legacy.get(cid), threads.get(cid), b)
        for m in b.messages:
            yield where, m
        for r in b.responses:
            yield where, r
        for d in b.documents:
            yield where, d


def _conversation(cid: str, legacy: Any, thread: Any, b: _Builder) -> dict[str, Any]:
    name = (legacy["name"] if legacy is not None else None) or (
        thread["name"] if thread is not None else None
    )
    model = legacy["model"] if legacy is not None else None
    times = [m["created_at"] for m in b.messages if m.get("created_at")]
    visible = [m["content"] for m in b.messages if m["content"]]
    record = {
        "type": "conversation",
        "uuid": _uid(cid),
        "external_id": cid,
        "title": None if name is None else str(name)[:500],
        "default_model": model or next((m["model"] for m in b.messages if m["model"]), None),
        "last_message": preview(visible[-1]) if visible else None,
    }
    if times:
        record["created_at"], record["updated_at"] = min(times), max(times)
    return record
