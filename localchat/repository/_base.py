"""The shared shape of every data-access function.

Aggregate modules are mostly one-line wrappers over these helpers:

    @operation
    def get_user(s, user_id):           return get_row(User, user_id)
    @operation
    def delete_user(s, user_id):        return delete_row(User, user_id)

``operation`` makes each call (1) run on *its* session's store, whatever other
session is open in the thread, (2) atomic: a failed call is rolled back to a
savepoint, leaving the session as it was, and (3) raise localchat errors,
never peewee's ``IntegrityError``. It also (4) presents the session parameter
as ``session`` (the functions call it ``s`` inside): ``get_user(session=s, user_id=1)``
works and ``inspect.signature(get_user)`` starts with ``session``; anything else
first raises ``NoSession``.

Pages: :func:`check_page` is the one rule every listing follows (any positive
``limit``, None or one past 64 bits meaning all; any ``offset`` of 0 or more,
one past 64 bits giving an empty page).
"""

from __future__ import annotations

import functools
import inspect
import math
import sqlite3
import uuid as _uuid
from collections.abc import Callable, Iterable, Mapping
from threading import get_ident
from typing import Any, Concatenate, ParamSpec, TypeVar

import peewee

from ..database import Session
from ..errors import Conflict, NoSession, ValidationError, translate
from ..models import router

__all__ = [
    "operation",
    "read_operation",
    "own_atomicity_operation",
    "in_savepoint",
    "get_row",
    "string_keys",
    "check_storable",
    "uuid_or_none",
    "find_row",
    "update_row",
    "delete_row",
    "paginate",
    "check_page",
    "check_choice",
    "check_many",
    "check_text",
    "check_json",
    "row_id",
    "fits_int64",
    "session_signature",
    "session_db",
    "no_session",
]

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=peewee.Model)

#: No longer a bound of listings (any positive limit works, see check_page);
#: kept only for search.py's own page check until that uses check_page.
MAX_LIMIT = 10_000

# What a SQLite INTEGER / PostgreSQL BIGINT holds; a larger int cannot name a row.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# What an INTEGER column holds on PostgreSQL (SQLite's holds 64 bits): the bound of
# every count kept in one, on both backends alike.
INT32_MAX = 2**31 - 1


def fits_int64(value: int) -> bool:
    """Whether ``value`` fits a 64-bit integer column (the driver refuses anything else)."""
    return INT64_MIN <= value <= INT64_MAX


def operation(
    fn: Callable[Concatenate[Session, P], R],
) -> Callable[Concatenate[Session, P], R]:
    """Run ``fn(s, ...)`` bound to ``s``'s store, in a savepoint, with clean errors."""
    return _wrap(fn, savepoint=True)


def read_operation(
    fn: Callable[Concatenate[Session, P], R],
) -> Callable[Concatenate[Session, P], R]:
    """:func:`operation` for a call that only reads: no savepoint on SQLite.

    A savepoint costs two statements (about 10-15 us); a call that writes
    nothing has nothing to roll back. Only for functions that never write.
    On PostgreSQL the savepoint stays: a failed read would otherwise abort the
    session's transaction.
    """
    return _wrap(fn, savepoint=False)


def own_atomicity_operation(
    fn: Callable[Concatenate[Session, P], R],
) -> Callable[Concatenate[Session, P], R]:
    """:func:`operation` for a call that makes itself atomic: no savepoint around it.

    The call either writes with ONE statement (SQLite runs a statement, its
    triggers included, atomically: a failing one leaves nothing behind and the
    transaction goes on), or wraps its writes in :func:`in_savepoint`.
    """
    return _wrap(fn, savepoint=False)


def in_savepoint(db: peewee.Database, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """``fn(*args, **kwargs)`` atomically: in a savepoint, or a transaction if none is open."""
    if db.transaction_depth() == 0:
        with db.atomic():
            return fn(*args, **kwargs)
    return _in_savepoint(db, fn, *args, **kwargs)


def _wrap(
    fn: Callable[Concatenate[Session, P], R], *, savepoint: bool
) -> Callable[Concatenate[Session, P], R]:
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(s: Any = _MISSING, /, *args: Any, **kwargs: Any) -> R:
        if s is _MISSING:  # f(session=s, ...): the name every signature shows
            s = kwargs.pop("session", _MISSING)
            if s is _MISSING:
                raise TypeError(f"{name}() missing 1 required argument: 'session'")
        elif kwargs and "session" in kwargs:
            raise TypeError(f"{name}() got multiple values for argument 'session'")
        db = getattr(s, "db", None)
        if db is None:
            raise no_session(name, s)
        if s.owner != get_ident():
            s.check_usable()
        pushed = router.obj is not db
        if pushed:
            router.push(db)
        try:
            # Only SQLite can skip it: on PostgreSQL any failed statement, a read
            # included, aborts the whole transaction unless a savepoint catches it.
            if not savepoint and isinstance(db, peewee.SqliteDatabase):
                return fn(s, *args, **kwargs)
            if db.transaction_depth() == 0:  # no transaction open: peewee starts one
                with db.atomic():
                    return fn(s, *args, **kwargs)
            return _in_savepoint(db, fn, s, *args, **kwargs)
        except peewee.IntegrityError as exc:
            raise Conflict(_integrity_message(exc)) from exc
        except (peewee.PeeweeException, sqlite3.Error, OSError) as exc:
            error = translate(exc, s.store.config.describe(), readonly=s.readonly)
            if error is None:
                raise
            raise error from exc
        finally:
            if pushed:
                router.pop()

    wrapper.__signature__ = session_signature(fn)  # type: ignore[attr-defined]
    return wrapper


_MISSING: Any = object()


def session_signature(fn: Callable[..., Any]) -> inspect.Signature:
    """``fn``'s signature with its first parameter (the session) named ``session``.

    The functions name it ``s`` inside; callers see and may pass ``session=``.
    """
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    params[0] = params[0].replace(name="session", kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sig.replace(parameters=params)


def no_session(name: str, value: Any) -> NoSession:
    """The error for a call whose first argument is not a localchat session."""
    return NoSession(
        f"{name}() takes a localchat session first (from get_session() or "
        f"local_session()), got {type(value).__name__}."
    )


def session_db(name: str, session: Any) -> peewee.Database:
    """The database of ``session``; :class:`NoSession` if it is not a localchat session."""
    db = getattr(session, "db", None)
    if db is None:
        raise no_session(name, session)
    return db


# One fixed savepoint name: SQLite and PostgreSQL release / roll back the most
# recent savepoint of a name, so nesting works, and the statements' text never
# changes, so the driver reuses them prepared (peewee's atomic() names each
# savepoint with a fresh uuid: a new statement to parse every call).
_SAVEPOINT = 'SAVEPOINT "localchat_call"'
_RELEASE = 'RELEASE SAVEPOINT "localchat_call"'
_ROLLBACK = 'ROLLBACK TO SAVEPOINT "localchat_call"'


def _in_savepoint(db: peewee.Database, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """``fn(*args, **kwargs)`` in a savepoint: on any error, its changes are undone."""
    db.execute_sql(_SAVEPOINT)
    try:
        result = fn(*args, **kwargs)
        db.execute_sql(_RELEASE)
    except BaseException:
        db.execute_sql(_ROLLBACK)
        db.execute_sql(_RELEASE)
        raise
    return result


def _integrity_message(exc: Exception) -> str:
    text = str(exc)
    if "UNIQUE" in text or "unique" in text or "duplicate key" in text:
        return f"already exists: {text}"
    if "FOREIGN KEY" in text or "foreign key" in text:
        return f"refers to a record that does not exist: {text}"
    return f"constraint failed: {text}"


def row_id(value: Any, what: str = "id") -> int | None:
    """An integer primary key from an int, a model instance, or None."""
    if value is None:
        return None
    if isinstance(value, peewee.Model):
        return value.get_id()
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what} must be an integer id, got {value!r}.")
    if not fits_int64(value):
        raise ValidationError(f"{what} {value} is outside the 64-bit range no id can exceed.")
    return value


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
    if isinstance(key, str) and key.isascii() and key.isdigit():
        number = int(key)
        if fits_int64(number):
            return model.get_or_none(model._meta.primary_key == number)
    return None


def find_row(model: type[M], *conditions: Any) -> M | None:
    """The first row matching every condition, or None."""
    return model.get_or_none(*conditions)


def update_row(row: M | None, fields: dict[str, Any]) -> M | None:
    """Set ``fields`` that are not None on ``row`` and save it; None passes through."""
    if row is None:
        return None
    changes = {k: v for k, v in fields.items() if v is not None}
    unknown = [k for k in changes if k not in row._meta.fields]
    if unknown:
        raise ValidationError(f"{type(row).__name__} has no field {', '.join(sorted(unknown))}.")
    for key, value in changes.items():
        setattr(row, key, value)
    row.save()
    return row


def delete_row(model: type[M], key: Any) -> bool:
    """Delete the row ``key`` names (id or uuid); True if one was deleted."""
    row = get_row(model, key)
    if row is None:
        return False
    return bool(row.delete_instance())


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


def paginate(query: peewee.ModelSelect[Any], limit: int | None = 100, offset: int = 0) -> list[Any]:
    """``query``'s page: the rows from ``offset`` on, at most ``limit`` (see :func:`check_page`)."""
    limit, offset = check_page(limit, offset)
    return list(query.limit(limit).offset(offset))


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
