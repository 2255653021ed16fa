"""The audit log of generation events, and the questions asked of it.

    from localchat import local_session
    from localchat.repository import error_rate, list_audit_logs_for_user, log_generation

    with local_session() as s:
        log_generation(s, user_id="user_123", document_type="summary",
                       input_data={"topic": "release notes"},
                       generated_text={"title": "What changed"},
                       model_used="llama3.1", tokens_used=450, generation_time_ms=1250)
        list_audit_logs_for_user(s, "user_123")     # newest first
        error_rate(s)                               # 0.0

``user_id`` is the caller's own identifier (a string; an int is stored as its
text), not a foreign key: the log outlives the users it mentions. Entries are
append-only; there is no update or delete. Time filters take ``since``
(inclusive) and ``until`` (exclusive) as datetimes (naive = UTC) or dates
(midnight UTC); days are UTC days.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import peewee
from peewee import fn

from ..checks import check_choice, check_count, check_datetime, check_json, check_text, get_row
from ..database import Session
from ..errors import ValidationError
from ..models import AUDIT_STATUSES, AuditLog
from ..operations import operation
from ._base import paginate

__all__ = [
    "log_generation",
    "get_audit_log",
    "list_audit_logs_for_user",
    "list_audit_logs_between",
    "count_generations_per_user",
    "average_generation_time_ms",
    "average_generation_time_per_model",
    "error_rate",
    "tokens_per_model_per_day",
]

#: A time filter: a datetime (naive = UTC), a date (midnight UTC), or None (open).
_When = _dt.datetime | _dt.date | None


def _user_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return check_text("user_id", value, max_length=255)


def _within(query: Any, since: Any, until: Any) -> Any:
    start = check_datetime("since", since, dates=True) if since is not None else None
    end = check_datetime("until", until, dates=True) if until is not None else None
    if start is not None and end is not None and end < start:
        raise ValidationError(
            f"until {end.isoformat()} is before since {start.isoformat()}; swap them."
        )
    if start is not None:
        query = query.where(AuditLog.created_at >= start)
    if end is not None:
        query = query.where(AuditLog.created_at < end)
    return query


@operation
def log_generation(
    s: Session,
    user_id: str,
    document_type: str,
    input_data: dict[str, Any],
    generated_text: dict[str, Any],
    model_used: str | None = None,
    tokens_used: int | None = None,
    generation_time_ms: int | None = None,
    status: str = "success",
    error_message: str | None = None,
    document_version: str = "1.0",
) -> AuditLog:
    """Record one generation event (``status`` is "success" or "error").

    ``model_used`` names the model that generated the text; None (the default)
    stores no model.
    """
    return AuditLog.create(
        user_id=_user_id(user_id),
        document_type=check_text("document_type", document_type, max_length=255),
        document_version=check_text("document_version", document_version, max_length=255),
        input_data=check_json("input_data", input_data, dict_only=True),
        generated_text=check_json("generated_text", generated_text, dict_only=True),
        model_used=None
        if model_used is None
        else check_text("model_used", model_used, max_length=255),
        tokens_used=None if tokens_used is None else check_count("tokens_used", tokens_used),
        generation_time_ms=None
        if generation_time_ms is None
        else check_count("generation_time_ms", generation_time_ms),
        status=check_choice("status", status, AUDIT_STATUSES),
        error_message=None
        if error_message is None
        else check_text("error_message", error_message, allow_empty=True),
    )


@operation
def get_audit_log(s: Session, log_id: int | str) -> AuditLog | None:
    """The entry with this id or uuid, or None."""
    return get_row(AuditLog, log_id)


@operation
def list_audit_logs_for_user(
    s: Session, user_id: str, limit: int | None = 100, offset: int = 0
) -> list[AuditLog]:
    """A user's generation history, newest first."""
    query = (
        AuditLog.select()
        .where(AuditLog.user_id == _user_id(user_id))
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
    )
    return paginate(query, limit, offset)


@operation
def list_audit_logs_between(
    s: Session,
    since: _dt.datetime | _dt.date,
    until: _dt.datetime | _dt.date | None = None,
    limit: int | None = 100,
    offset: int = 0,
) -> list[AuditLog]:
    """Entries from ``since`` (inclusive) to ``until`` (exclusive; None: open), oldest first."""
    if since is None:
        raise ValidationError("since is required; pass a datetime or a date.")
    query = _within(AuditLog.select(), since, until).order_by(AuditLog.created_at, AuditLog.id)
    return paginate(query, limit, offset)


@operation
def count_generations_per_user(
    s: Session, since: _When = None, until: _When = None
) -> dict[str, int]:
    """``{user_id: number of entries}`` (successes and errors)."""
    query = _within(
        AuditLog.select(AuditLog.user_id, fn.COUNT(AuditLog.id)).group_by(AuditLog.user_id),
        since,
        until,
    )
    return {user: int(count) for user, count in query.tuples()}


@operation
def average_generation_time_ms(
    s: Session, since: _When = None, until: _When = None
) -> float | None:
    """Mean ``generation_time_ms`` of successful entries; None when there are none."""
    query = _within(
        AuditLog.select(fn.AVG(AuditLog.generation_time_ms)).where(
            (AuditLog.status == "success") & AuditLog.generation_time_ms.is_null(False)
        ),
        since,
        until,
    )
    value = query.scalar()
    return None if value is None else float(value)


@operation
def average_generation_time_per_model(
    s: Session, since: _When = None, until: _When = None
) -> dict[str | None, float]:
    """``{model_used: mean generation_time_ms}`` of successful timed entries.

    Entries that named no model are averaged under ``None``; a model with no
    timed success is left out.
    """
    query = _within(
        AuditLog.select(AuditLog.model_used, fn.AVG(AuditLog.generation_time_ms))
        .where((AuditLog.status == "success") & AuditLog.generation_time_ms.is_null(False))
        .group_by(AuditLog.model_used),
        since,
        until,
    )
    return {model: float(mean) for model, mean in query.tuples()}


@operation
def error_rate(s: Session, since: _When = None, until: _When = None) -> float:
    """Errors / all entries, 0.0 when there are no entries."""
    total = _within(AuditLog.select(), since, until).count()
    if not total:
        return 0.0
    errors = _within(AuditLog.select().where(AuditLog.status == "error"), since, until).count()
    return errors / total


def _day(value: Any) -> _dt.date:
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    return _dt.date.fromisoformat(str(value)[:10])


@operation
def tokens_per_model_per_day(
    s: Session, since: _When = None, until: _When = None
) -> list[tuple[_dt.date, str | None, int]]:
    """``[(UTC day, model_used, tokens)]`` summed over entries with a token count.

    Entries that named no model are summed under ``None``, after the named models of that day.
    """
    day: Any
    if isinstance(s.db, peewee.SqliteDatabase):
        day = fn.DATE(AuditLog.created_at)
    else:  # PostgreSQL: timestamps are stored as naive UTC, so the cast is the UTC day
        day = peewee.Cast(AuditLog.created_at, "DATE")
    query = (
        AuditLog.select(day, AuditLog.model_used, fn.SUM(AuditLog.tokens_used))
        .where(AuditLog.tokens_used.is_null(False))
        .group_by(day, AuditLog.model_used)
        .order_by(day, AuditLog.model_used.asc(nulls="LAST"))
    )
    rows = _within(query, since, until).tuples()
    return [(_day(d), model, int(tokens)) for d, model, tokens in rows]
