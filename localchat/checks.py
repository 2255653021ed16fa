"""Argument checks and key resolution: the one home of every rule a data-access
function applies to what it is given, before any SQL runs.

    from localchat.checks import check_text, get_row, id_of

    check_text("title", "Trip ideas", max_length=500)   # 'Trip ideas'
    check_json("metadata", {"a": "x\0y"})               # ValidationError: NUL
    get_row(User, 5)           # the row, or None; a uuid (str / UUID) works too
    id_of(Message, "5")        # 5: an int, digit string, uuid or row names a row

Each check returns the (possibly normalised) value or raises
``ValidationError`` with a message that quotes the value and says what is
accepted. Keys: an ``int`` is a row id, a ``UUID`` (or its text) a uuid, a
model instance itself; a model may give strings a rule of its own with
:func:`string_keys` (a conversation's string is its thread id), and then
:func:`get_row` and :func:`id_of` both follow it.

Pages: :func:`check_page` is the rule every listing follows (any positive
``limit``, None or one past 64 bits meaning all; any ``offset`` of 0 or more,
one past 64 bits giving an empty page); :func:`check_search_page` is the
stricter rule of search (``limit`` up to :data:`SEARCH_MAX_LIMIT`: a search
does bounded work).
"""

from __future__ import annotations

import datetime as _dt
import math
import uuid as _uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import peewee

from .errors import ValidationError

__all__ = [
    "INT32_MAX",
    "INT64_MAX",
    "INT64_MIN",
    "SEARCH_MAX_LIMIT",
    "fits_int64",
    "check_storable",
    "check_text",
    "text_or_none",
    "check_choice",
    "check_many",
    "check_json",
    "check_bool",
    "check_positive_int",
    "check_count",
    "count_or_none",
    "check_datetime",
    "check_fields",
    "check_page",
    "check_search_page",
    "uuid_or_none",
    "string_keys",
    "get_row",
    "id_of",
]

M = TypeVar("M", bound=peewee.Model)

# What a SQLite INTEGER / PostgreSQL BIGINT holds; a larger int cannot name a row.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# What an INTEGER column holds on PostgreSQL (SQLite's holds 64 bits): the bound of
# every count kept in one, on both backends alike.
INT32_MAX = 2**31 - 1
#: The largest page a search returns (a search does bounded work; listings have no bound).
SEARCH_MAX_LIMIT = 10_000


def fits_int64(value: int) -> bool:
    """Whether ``value`` fits a 64-bit integer column (the driver refuses anything else)."""
    return INT64_MIN <= value <= INT64_MAX


def check_many(name: str, value: Any) -> Iterable[Any]:
    """``value`` if it is a list (or any iterable) of items, not one value or a mapping."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ValidationError(
            f"{name} must be a list of dicts (or an iterable of them), got {type(value).__name__}."
        )
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices`` (an Enum's ``.value`` is accepted)."""
    value = getattr(value, "value", value)
    options = tuple(choices)
    if value not in options:
        raise ValidationError(f"{name} {value!r} is not one of {', '.join(options)}.")
    return str(value)


def check_text(
    name: str, value: Any, *, allow_empty: bool = False, max_length: int | None = None
) -> str:
    """``value`` if it is a string (non-empty unless allowed, not over ``max_length``)."""
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string, got {type(value).__name__}.")
    if not allow_empty and not value.strip():
        raise ValidationError(f"{name} must not be empty.")
    check_storable(name, value)
    if max_length is not None and len(value) > max_length:
        raise ValidationError(f"{name} is {len(value)} characters; the limit is {max_length}.")
    return value


def text_or_none(name: str, value: Any, max_length: int | None = None) -> str | None:
    """None (leave empty, or as it is), or any string (empty too) up to ``max_length``."""
    if value is None:
        return None
    return check_text(name, value, allow_empty=True, max_length=max_length)


def _check_encodable(name: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(
            f"{name} contains a lone surrogate ({value[exc.start]!r} at {exc.start}); "
            "only valid Unicode text can be stored."
        ) from None


def check_json(name: str, value: Any, *, dict_only: bool = False, required: bool = False) -> Any:
    """``value`` if it stores as JSON and reads back equal, on SQLite and PostgreSQL.

    The one JSON rule of every function that stores a JSON value. Accepted:
    None (unless ``required`` or ``dict_only``), bool, int, finite float, str,
    list/tuple (read back as a list) and dict with str keys, nested up to 100
    levels (``dict_only``: a dict at the top). Strings, keys included, must not
    hold NUL or lone surrogates (PostgreSQL's JSONB refuses both).
    """
    if dict_only and not isinstance(value, dict):
        raise ValidationError(f"{name} must be a dict, got {type(value).__name__}.")
    if required and value is None:
        raise ValidationError(f"{name} must be a JSON value, got None.")
    return _check_json(name, value, 0)


def _check_json(name: str, value: Any, depth: int) -> Any:
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{name} holds {value!r}; JSON numbers must be finite.")
        return value
    if isinstance(value, str):
        return check_storable(name, value)
    if depth >= 100:
        raise ValidationError(f"{name} is nested deeper than 100 levels.")
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_json(name, item, depth + 1)
        return value
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(
                    f"{name} has the key {key!r}; JSON object keys must be strings."
                )
            check_storable(name, key)
            _check_json(name, item, depth + 1)
        return value
    raise ValidationError(
        f"{name} holds a {type(value).__name__}; JSON accepts dict, list, str, "
        "int, float, bool and None."
    )


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{name} must be True or False, got {value!r}.")
    return value


def check_positive_int(name: str, value: Any, maximum: int = INT64_MAX) -> int:
    """A whole number from 1 to ``maximum`` (``INT32_MAX`` for an INTEGER column)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValidationError(f"{name} must be a positive integer up to {maximum}, got {value!r}.")
    return value


def check_count(name: str, value: Any) -> int:
    """A whole number of 0 or more that an INTEGER column holds on every backend
    (PostgreSQL's is 32 bits: up to ``INT32_MAX``)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT32_MAX:
        raise ValidationError(
            f"{name} must be a whole number from 0 to {INT32_MAX}, got {value!r}."
        )
    return value


def count_or_none(name: str, value: Any) -> int | None:
    """None (not known), or a count as :func:`check_count` accepts it."""
    return None if value is None else check_count(name, value)


def check_datetime(name: str, value: Any, *, dates: bool = False) -> _dt.datetime:
    """An aware UTC-or-other datetime; naive input is taken as UTC (a date: its midnight UTC)."""
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
    if dates and isinstance(value, _dt.date):
        return _dt.datetime.combine(value, _dt.time(), tzinfo=_dt.timezone.utc)
    wanted = "a datetime or a date" if dates else "a datetime"
    raise ValidationError(f"{name} must be {wanted}, got {value!r}.")


def check_cutoff(name: str, value: Any) -> _dt.datetime:
    """The moment an age argument names: a timedelta (that long before now, never
    negative), or a datetime or date (itself, as :func:`check_datetime`)."""
    if isinstance(value, _dt.timedelta):
        if value < _dt.timedelta(0):
            raise ValidationError(f"{name} must not be negative, got {value}.")
        return _dt.datetime.now(_dt.timezone.utc) - value
    return check_datetime(name, value, dates=True)


def check_fields(
    kind: str,
    checks: Mapping[str, Callable[[Any], Any]],
    fields: Mapping[str, Any],
    required: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``fields`` run through ``checks``; None values (= leave alone) are dropped,
    except for ``required`` ones, which must be given."""
    unknown = sorted(set(fields) - set(checks))
    if unknown:
        raise ValidationError(
            f"{kind} has no field {', '.join(unknown)}; accepted: {', '.join(checks)}."
        )
    missing = [name for name in required if fields.get(name) is None]
    if missing:
        raise ValidationError(f"{kind} needs {', '.join(missing)}; got None.")
    return {k: checks[k](v) for k, v in fields.items() if v is not None}


def check_page(limit: Any, offset: Any) -> tuple[int, int]:
    """``(limit, offset)`` ready for SQL, or ValidationError: the rule of every listing.

    ``limit`` is any positive integer, or None for every row; ``offset`` any
    integer of 0 or more. Both come back within the 64-bit range SQLite and
    PostgreSQL take: a larger limit still means every row, a larger offset
    lies past every row (an empty page), never an OverflowError.
    """
    if limit is None:
        limit = INT64_MAX
    elif isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError(
            f"limit must be a positive integer or None (every row), got {limit!r}."
        )
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError(f"offset must be an integer of 0 or more, got {offset!r}.")
    return min(limit, INT64_MAX), min(offset, INT64_MAX)


def check_search_page(limit: Any, offset: Any) -> None:
    """``limit`` and ``offset`` as a search accepts them, or :class:`ValidationError`.

    Stricter than :func:`check_page`: ``limit`` is required and at most
    :data:`SEARCH_MAX_LIMIT`, and ``offset`` must fit 64 bits.
    """
    for name, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(f"{name} must be an integer, got {value!r}.")
    if not 1 <= limit <= SEARCH_MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {SEARCH_MAX_LIMIT}, got {limit}.")
    if not 0 <= offset <= INT64_MAX:
        raise ValidationError(f"offset must be between 0 and {INT64_MAX}, got {offset}.")


def uuid_or_none(value: Any) -> _uuid.UUID | None:
    if isinstance(value, _uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return _uuid.UUID(value)
        except ValueError:
            return None
    return None


#: Models whose string keys follow a rule of their own (conversations: thread ids).
_STRING_KEYS: dict[type[peewee.Model], Callable[[str], Any]] = {}


def string_keys(model: type[M], lookup: Callable[[str], M | None]) -> None:
    """Make :func:`get_row` name a ``model`` row by a string through ``lookup``.

    Conversations use it: a string is a thread id there (see conversations.py),
    so every function naming a conversation follows the same rule.
    """
    _STRING_KEYS[model] = lookup


def check_storable(name: str, value: str) -> str:
    """``value`` unless it holds what no stored text can (NUL, a lone surrogate)."""
    if "\0" in value:
        raise ValidationError(f"{name} must not contain NUL characters.")
    _check_encodable(name, value)
    return value


def get_row(model: type[M], key: Any) -> M | None:
    """The row whose id (int) or uuid (str / UUID) is ``key``; None if missing.

    A string no stored text can equal (NUL, a lone surrogate) is a
    ValidationError, as everywhere else.
    """
    if key is None:
        return None
    if isinstance(key, model):
        key = key.get_id()
    if isinstance(key, int) and not isinstance(key, bool):
        if not fits_int64(key):  # no row has it; the driver would raise OverflowError
            return None
        return model.get_or_none(model._meta.primary_key == key)
    if isinstance(key, str):
        lookup = _STRING_KEYS.get(model)
        if lookup is not None:
            return lookup(key)
        check_storable(f"{model.__name__} key", key)
    uid = uuid_or_none(key)
    if uid is not None and "uuid" in model._meta.fields:
        return model.get_or_none(model._meta.fields["uuid"] == uid)
    number = _digits(key) if isinstance(key, str) else None
    if number is not None:
        if fits_int64(number):
            return model.get_or_none(model._meta.primary_key == number)
    return None


def id_of(model: type[peewee.Model], key: Any, what: str) -> int | None:
    """The integer id ``key`` names: an id, a digit string, a uuid, a row, or a string
    following the model's own rule (:func:`string_keys`). None if no such row can
    exist (an unknown uuid or thread id, a number outside the 64-bit range);
    ValidationError for anything else.

    The strict sibling of :func:`get_row`, for functions that need only the id.
    """
    if isinstance(key, model):
        return key.get_id()
    if isinstance(key, int) and not isinstance(key, bool):
        return key if fits_int64(key) else None
    if isinstance(key, str):
        lookup = _STRING_KEYS.get(model)
        if lookup is not None:
            row = lookup(key)
            return None if row is None else row.get_id()
        number = _digits(check_storable(what, key))
        if number is not None:
            return number if fits_int64(number) else None
    uid = uuid_or_none(key)
    if uid is None:
        raise ValidationError(
            f"{what} must be an integer id, a uuid or a {model.__name__}, got {key!r}."
        )
    field = model._meta.fields["uuid"]
    return model.select(model._meta.primary_key).where(field == uid).scalar()


def _digits(key: str) -> int | None:
    """The number an ASCII digit string spells, else None."""
    return int(key) if key.isascii() and key.isdigit() else None
