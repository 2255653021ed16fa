"""Read a localchat export file line by line, with the header checked first.

    from localchat.portable.jsonl import read_export
    for where, record in read_export("/tmp/chats.jsonl"):   # ("line 2", {...}), ...
        ...

Lines are read one at a time (never the whole file) and a line longer than
:data:`MAX_LINE_BYTES` is refused before it is parsed. The first line must be
a header of a format version this localchat knows; after the last record, the
counts the header announced are compared with what the file held, so a file
cut at a line boundary is refused too. The JSON form ``export --format json``
writes (``{"header": {...}, "records": [`` then one record a line) is read the
same way, line by line.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

from ..errors import ValidationError
from .records import FORMAT, FORMAT_VERSION

__all__ = ["MAX_LINE_BYTES", "read_export", "read_lines"]

#: The longest line accepted (a 32 MiB message; ``file`` records are ~1 MiB).
MAX_LINE_BYTES = 32 * 1024 * 1024


_JSON_OPEN = b'{"header": '
_JSON_RECORDS = b', "records": ['


def _json_document_line(number: int, line: bytes) -> bytes:
    """One line of the JSON form as the JSON Lines record it holds."""
    text = line.strip()
    if number == 1:
        if not text.endswith(_JSON_RECORDS):
            raise ValueError("the header line does not open the records list")
        return text[len(_JSON_OPEN) : -len(_JSON_RECORDS)]
    if text.endswith(b"]}"):
        text = text[:-2]
    return text[:-1] if text.endswith(b",") else text


def read_lines(fp: IO[bytes], name: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) of each non-empty line of a binary file.

    A file in the JSON form (``{"header": ..., "records": [`` first) gives the
    same records, each line stripped of the list's punctuation.
    """
    number = 0
    document = False
    while True:
        line = fp.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES:
            raise ValidationError(
                f"{name} line {number}: longer than {MAX_LINE_BYTES} bytes; not a localchat export."
            )
        if number == 1 and line.lstrip(b"\xef\xbb\xbf \t").startswith(_JSON_OPEN):
            document = True
        if document:
            try:
                line = _json_document_line(number, line.lstrip(b"\xef\xbb\xbf"))
            except ValueError as exc:
                raise ValidationError(
                    f"{name} line {number}: not the JSON form localchat writes ({exc}); "
                    "reformatted JSON cannot be read line by line: export as jsonl."
                ) from None
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise ValidationError(f"{name} line {number}: not valid JSON ({exc}).") from None


def _check_header(name: str, header: Any) -> dict[str, Any]:
    if not isinstance(header, dict) or header.get("type") != "header":
        raise ValidationError(f"{name} line 1: not a localchat export (no header line).")
    if header.get("format") != FORMAT:
        raise ValidationError(f"{name} line 1: format {header.get('format')!r} is not {FORMAT!r}.")
    version = header.get("format_version")
    if type(version) is not int or version < 1:
        raise ValidationError(f"{name} line 1: format_version must be an integer, got {version!r}.")
    if version > FORMAT_VERSION:
        raise ValidationError(
            f"{name}: format version {version} is newer than this localchat reads "
            f"({FORMAT_VERSION}); upgrade localchat to import it."
        )
    counts = header.get("counts")
    if not isinstance(counts, dict) or not all(
        isinstance(k, str) and type(v) is int for k, v in counts.items()
    ):
        raise ValidationError(f"{name} line 1: the header's counts must map types to integers.")
    return header


def read_export(path: str | os.PathLike[str]) -> Iterator[tuple[str, Any]]:
    """("line N", record) for every record of the export at ``path``, header checked."""
    name = os.fspath(path)
    with open(path, "rb") as fp:
        lines = read_lines(fp, name)
        first = next(lines, None)
        if first is None:
            raise ValidationError(f"{name}: the file is empty; not a localchat export.")
        header = _check_header(name, first[1])
        seen: Counter[str] = Counter()
        for number, record in lines:
            if isinstance(record, dict) and isinstance(record.get("type"), str):
                seen[record["type"]] += 1
            yield f"{name} line {number}", record
    for kind, expected in header["counts"].items():
        if seen[kind] != expected:
            raise ValidationError(
                f"{name}: the header announces {expected} {kind} record(s), the file holds "
                f"{seen[kind]}; the file is incomplete or was edited."
            )
