"""Import ChatGPT's "Export data": ``conversations.json`` (or its numbered parts), or the zip.

    from localchat import local_session
    from localchat.portable import import_path

    with local_session() as s:
        import_path(s, "chatgpt-export.zip", user="ada@example.org")   # format detected

Each conversation becomes a localchat conversation whose ``external_id`` is
the ChatGPT conversation id; every node of its ``mapping`` that has a message
becomes a message under the nearest ancestor that has one, so every branch is
kept. Uuids are derived from the ChatGPT ids (uuid5), so importing a newer
export of the same account adds only the new conversations and messages. The
message of ``current_node`` becomes the conversation's current leaf when the
import adds it: the conversation opens on ChatGPT's current branch (else on
its newest message, as any import).

What each message keeps: ``role`` (author role), ``content`` (the text of its
content type: text parts, code, tool output, custom instructions, thoughts...;
``[image]`` for an image), ``model`` (``metadata.model_slug``), ``created_at``
(``create_time``; a null one takes its parent's time) and ``metadata``::

    {"source": "chatgpt", "node_id": "...", "hidden": true/false,
     "on_current_branch": true/false, "current": true (the leaf the user last saw),
     "content_type": "text", "author": {...}, "status": ..., "recipient": ...,
     "channel": ..., "weight": ..., "end_turn": ..., "chatgpt": <the original metadata>,
     "content": <the original content object, for every type but text>}

``hidden`` is ChatGPT's ``is_visually_hidden_from_conversation`` (or weight
0): the empty system messages, custom instructions and tool calls the UI does
not show. Attachments (``metadata.attachments``) become documents of their
message: with their bytes when the zip (or the folder of the json file) holds
``file-<id>…``, else as metadata only.

The json is read one conversation at a time (never the whole array in
memory). A zip is checked before anything is read: an entry name with ``..``
or an absolute path, or an entry that inflates more than :data:`MAX_RATIO`
times beyond :data:`MAX_ENTRY_BYTES`, is refused.
"""

from __future__ import annotations

import codecs
import datetime as _dt
import json
import math
import os
import posixpath
import re
import shutil
import uuid as _uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import ValidationError
from ..models import ROLES
from .loader import Loader, preview

__all__ = ["chatgpt_records", "iter_json_array", "message_text", "MAX_ENTRY_BYTES", "MAX_RATIO"]

#: uuid5 namespace of everything imported from ChatGPT.
NAMESPACE = _uuid.UUID("5d0f2f39-8c3b-4a56-9d43-6f1f0c3c8a11")
#: Largest single conversation object accepted (bytes of JSON text).
MAX_OBJECT_BYTES = 256 * 1024 * 1024
#: A zip entry may inflate to this size whatever its ratio ...
MAX_ENTRY_BYTES = 64 * 1024 * 1024
#: ... and beyond it only up to this many times its compressed size.
MAX_RATIO = 100
_GROUP = 200  # conversations per batch of records
_PARTS = re.compile(r"(^|/)conversations(-\d+)?\.json$")


def _uid(*parts: str) -> str:
    return str(_uuid.uuid5(NAMESPACE, ":".join(("chatgpt", *parts))))


# -- reading the json array, one element at a time ---------------------------
def iter_json_array(fp: IO[bytes], name: str) -> Iterator[Any]:
    """Each element of a JSON array (or the one object) in ``fp``, parsed one at a time."""
    decoder = json.JSONDecoder()
    reader = codecs.getincrementaldecoder("utf-8-sig")()
    buf, pos, eof = "", 0, False

    def more() -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        chunk = fp.read(1 << 20)
        text = reader.decode(chunk, final=not chunk)
        eof = not chunk
        buf = buf[pos:] + text
        pos = 0
        return True

    def skip_space() -> str:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf):
                return buf[pos]
            if not more():
                return ""

    first = skip_space()
    if first == "{":
        single = True
    elif first == "[":
        single, pos = False, pos + 1
    else:
        raise ValidationError(f"{name}: not a ChatGPT export (it does not start with [ or {{).")
    index = 0
    while True:
        c = skip_space()
        if not single:
            if c == "]":
                return
            if index and c != ",":
                raise ValidationError(f"{name}: conversation #{index + 1}: expected ',' or ']'.")
            if index:
                pos += 1
                c = skip_space()
        if c == "":
            raise ValidationError(f"{name}: the file ends inside the array (truncated).")
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
                break
            except RecursionError:
                raise ValidationError(
                    f"{name}: conversation #{index + 1} is nested too deeply to be a conversation."
                ) from None
            except json.JSONDecodeError as exc:
                if len(buf) - pos > MAX_OBJECT_BYTES:
                    raise ValidationError(
                        f"{name}: conversation #{index + 1} is larger than "
                        f"{MAX_OBJECT_BYTES} bytes."
                    ) from None
                if not more():
                    raise ValidationError(
                        f"{name}: conversation #{index + 1} is not valid JSON ({exc.msg}; "
                        "the file may be truncated)."
                    ) from None
        pos = end
        yield value
        index += 1
        if single:
            if skip_space() != "":
                raise ValidationError(f"{name}: text after the conversation object.")
            return


# -- where the files are -----------------------------------------------------
class _Source:
    """The json parts and attachment files of a zip, a folder or one json file."""

    def __init__(self, path: str):
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        if zipfile.is_zipfile(path):
            self.zip = zipfile.ZipFile(path)
            self._check_zip(self.zip)
            names = [i.filename for i in self.zip.infolist() if not i.is_dir()]
            self.base = ""
        else:
            folder = path if os.path.isdir(path) else os.path.dirname(path) or "."
            self.base = folder
            names = sorted(os.listdir(folder)) if os.path.isdir(path) else [os.path.basename(path)]
            self.others = sorted(os.listdir(folder))
        self.names = names
        self.parts = sorted(n for n in names if _PARTS.search(n))
        if self.zip is None and not os.path.isdir(path):
            self.parts = names  # one json file, whatever its name
        if not self.parts:
            raise ValidationError(f"{path}: holds no conversations.json.")

    @staticmethod
    def _check_zip(zf: zipfile.ZipFile) -> None:
        for info in zf.infolist():
            name = info.filename
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name):
                raise ValidationError(f"zip entry {name!r} points outside the archive; refused.")
            limit = max(MAX_ENTRY_BYTES, info.compress_size * MAX_RATIO)
            if info.file_size > limit:
                raise ValidationError(
                    f"zip entry {name!r} inflates to {info.file_size} bytes from "
                    f"{info.compress_size} (a zip bomb?); refused."
                )

    def open(self, name: str) -> IO[bytes]:
        if self.zip is not None:
            return self.zip.open(name)
        return open(os.path.join(self.base, name) if os.path.isdir(self.path) else self.path, "rb")

    def find(self, file_id: str) -> str | None:
        """The entry of an uploaded or generated file, by its ChatGPT id."""
        pool = self.names if self.zip is not None else self.others
        for name in pool:
            base = posixpath.basename(name)
            if base.startswith(file_id) or base.startswith("file-" + file_id.removeprefix("file-")):
                return name
        return None

    def copy_to(self, name: str, target: Path) -> None:
        if self.zip is not None:
            info = self.zip.getinfo(name)
            with self.zip.open(info) as src, open(target, "wb") as dst:
                copied = 0
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    copied += len(chunk)
                    if copied > info.file_size:
                        raise ValidationError(f"zip entry {name!r} is larger than it says.")
                    dst.write(chunk)
        else:
            shutil.copyfile(os.path.join(self.base, name), target)

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


# -- one conversation -> records ---------------------------------------------
def _time(value: Any, where: str) -> _dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{where}: a time must be epoch seconds, got {value!r}.")
    try:
        return _dt.datetime.fromtimestamp(value, _dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise ValidationError(f"{where}: time {value!r} is out of range.") from None


def _strings(items: Any) -> list[str]:
    return [p for p in items if isinstance(p, str)] if isinstance(items, list) else []


def message_text(content: Any) -> str:
    """The text of a ChatGPT message ``content`` object, per its ``content_type``."""
    if not isinstance(content, dict):
        return ""
    kind = content.get("content_type")
    if kind == "multimodal_text":
        out = []
        for part in content.get("parts") or []:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    out.append(part["text"])  # audio_transcription
                elif "image" in str(part.get("content_type", "")):
                    out.append("[image]")
        return "\n".join(p for p in out if p)
    if kind == "user_editable_context":
        keys = ("user_profile", "user_instructions")
        return "\n\n".join(
            content[k] for k in keys if isinstance(content.get(k), str) and content[k]
        )
    if kind == "model_editable_context":
        return str(content.get("model_set_context") or "")
    if kind == "thoughts":
        out = []
        for t in content.get("thoughts") or []:
            if isinstance(t, dict):
                out += [str(t[k]) for k in ("summary", "content") if t.get(k)]
        return "\n\n".join(out)
    if kind == "system_error":
        return ": ".join(str(content[k]) for k in ("name", "text") if content.get(k))
    for key in ("text", "content", "result", "summary"):
        if isinstance(content.get(key), str):
            return str(content[key])
    return "\n".join(_strings(content.get("parts")))


def _order(mapping: dict[str, Any], where: str) -> list[tuple[str, str | None]]:
    """(node id, id of the nearest ancestor with a message) for each node with a message,
    parents first."""
    children: dict[str | None, list[str]] = {}
    for key, node in mapping.items():
        if not isinstance(node, dict):
            raise ValidationError(f"{where}: node {key!r} is not an object.")
        parent = node.get("parent")
        if parent is not None and (not isinstance(parent, str) or parent not in mapping):
            parent = None  # a dangling parent: the node becomes a root
        children.setdefault(parent, []).append(key)
    for above, kids in children.items():  # creation order where the export lists it
        listed = mapping[above].get("children") if above is not None else None
        if isinstance(listed, list):
            rank = {c: i for i, c in enumerate(listed) if isinstance(c, str)}
            kids.sort(key=lambda c: rank.get(c, len(rank)))
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    stack: list[tuple[str, str | None]] = [(k, None) for k in reversed(children.get(None, []))]
    while stack:
        key, above = stack.pop()
        if key in seen:
            continue
        seen.add(key)
        has = isinstance(mapping[key].get("message"), dict)
        if has:
            out.append((key, above))
        nxt = key if has else above
        stack += [(c, nxt) for c in reversed(children.get(key, []))]
    if len(seen) != len(mapping):
        raise ValidationError(f"{where}: the message tree has a cycle.")
    return out


def _current_branch(mapping: dict[str, Any], leaf: Any) -> list[str]:
    path: list[str] = []
    while isinstance(leaf, str) and leaf in mapping and leaf not in path:
        path.append(leaf)
        leaf = mapping[leaf].get("parent")
    return path


def _conversation(
    conv: Any, number: int, src: _Source, loader: Loader, name: str
) -> tuple[dict[str, Any], list[dict[str, Any]], list[tuple[dict[str, Any], str | None]]]:
    if not isinstance(conv, dict):
        raise ValidationError(f"{name}: conversation #{number} is not an object.")
    cid = conv.get("conversation_id") or conv.get("id")
    title = conv.get("title")
    where = f"{name}: conversation #{number} {cid!r} ({title!r})"
    if not isinstance(cid, str) or not cid:
        raise ValidationError(f"{where}: it has no id.")
    if title is not None and not isinstance(title, str):
        raise ValidationError(f"{where}: title must be text or null.")
    mapping = conv.get("mapping")
    if not isinstance(mapping, dict):
        raise ValidationError(f"{where}: mapping must be an object of nodes.")
    created = _time(conv.get("create_time"), where) or _dt.datetime.now(_dt.timezone.utc)
    updated = _time(conv.get("update_time"), where) or created
    branch = set(_current_branch(mapping, conv.get("current_node")))
    conv_uuid = _uid(cid)
    messages, documents = [], []
    times: dict[str, _dt.datetime] = {}
    last_visible = None
    for key, above in _order(mapping, where):
        msg = mapping[key]["message"]
        here = f"{where} node {key}"
        author = msg.get("author") if isinstance(msg.get("author"), dict) else {}
        role = author.get("role")
        if role not in ROLES:
            raise ValidationError(f"{here}: author role {role!r} is not one of {', '.join(ROLES)}.")
        meta = msg.get("metadata") if isinstance(msg.get("metadata"), dict) else {}
        content = msg.get("content")
        at = _time(msg.get("create_time"), here) or (times.get(above) if above else None) or created
        times[key] = at
        text = message_text(content)
        hidden = bool(meta.get("is_visually_hidden_from_conversation")) or msg.get("weight") == 0
        kind = content.get("content_type") if isinstance(content, dict) else None
        info: dict[str, Any] = {
            "source": "chatgpt",
            "node_id": key,
            "hidden": hidden,
            "on_current_branch": key in branch,
            "content_type": kind,
            "author": author,
            **{k: msg.get(k) for k in ("status", "recipient", "channel", "weight", "end_turn")},
            "chatgpt": meta,
        }
        if key == conv.get("current_node"):
            info["current"] = True
        if kind != "text":
            info["content"] = content
        slug = meta.get("model_slug")
        uid = _uid(cid, key)
        messages.append(
            {
                "type": "message",
                "uuid": uid,
                "conversation": conv_uuid,
                "parent": _uid(cid, above) if above else None,
                "role": role,
                "content": text,
                "model": slug if isinstance(slug, str) else None,
                "metadata": info,
                "created_at": at.isoformat(),
                "updated_at": (_time(msg.get("update_time"), here) or at).isoformat(),
            }
        )
        if key in branch and not hidden and text:
            last_visible = text
        for att in meta.get("attachments") or []:
            if isinstance(att, dict) and isinstance(att.get("id"), str):
                documents.append((_attachment(att, cid, uid, conv_uuid, at), src.find(att["id"])))
    slug = conv.get("default_model_slug")
    current = conv.get("current_node")
    record: dict[str, Any] = {
        "type": "conversation",
        "uuid": conv_uuid,
        "external_id": cid,
        "title": None if title is None else title[:500],
        "status": "archived" if conv.get("is_archived") is True else "active",
        "default_model": slug if isinstance(slug, str) else None,
        "last_message": None if last_visible is None else preview(last_visible),
        "created_at": created.isoformat(),
        "updated_at": updated.isoformat(),
    }
    if isinstance(current, str) and current in times:  # an imported message: it opens there
        record["current_leaf"] = _uid(cid, current)
    return record, messages, documents


def _attachment(
    att: dict[str, Any], cid: str, message: str, conversation: str, at: _dt.datetime
) -> dict[str, Any]:
    mime = att.get("mime_type")
    return {
        "type": "document",
        "uuid": _uid(cid, "attachment", att["id"]),
        "filename": str(att.get("name") or att["id"])[:255] or "unnamed",
        "mime_type": mime if isinstance(mime, str) else None,
        "size": att["size"] if type(att.get("size")) is int else None,
        "tags": ["chatgpt"],
        "conversation": conversation,
        "message": message,
        "created_at": at.isoformat(),
        "updated_at": at.isoformat(),
    }


def chatgpt_records(path: str, loader: Loader) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, record) for every conversation, message and attachment of a ChatGPT export."""
    src = _Source(path)
    tmp = Path(loader.tmp.name)
    try:
        group: list[tuple[dict[str, Any], list[Any], list[Any]]] = []
        number = 0
        for part in src.parts:
            shown = f"{path}:{part}" if src.zip is not None or os.path.isdir(path) else path
            with src.open(part) as fp:
                for conv in iter_json_array(fp, shown):
                    number += 1
                    group.append(_conversation(conv, number, src, loader, shown))
                    if len(group) >= _GROUP:
                        yield from _emit(group, src, loader, tmp)
                        group = []
        yield from _emit(group, src, loader, tmp)
    finally:
        src.close()


def _emit(
    group: list[tuple[dict[str, Any], list[Any], list[Any]]],
    src: _Source,
    loader: Loader,
    tmp: Path,
) -> Iterator[tuple[str, dict[str, Any]]]:
    for conv, _, _ in group:
        yield f"conversation {conv['external_id']}", conv
    for conv, messages, _ in group:
        for m in messages:
            yield f"conversation {conv['external_id']} node {m['metadata']['node_id']}", m
    for conv, _, documents in group:
        for doc, entry in documents:
            where = f"conversation {conv['external_id']} attachment {doc['filename']!r}"
            if entry is not None:
                target = tmp / f"upload-{doc['uuid']}"
                src.copy_to(entry, target)
                doc["sha256"] = loader.add_file(where, target)
                doc["size"] = target.stat().st_size
                doc["file"] = True
                target.unlink()
            yield where, doc
