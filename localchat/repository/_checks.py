"""Argument checks shared by the users, prompts, LLM and audit modules.

    check_fields("user", {"name": check_name}, {"name": "Ada", "email": None})
    # -> {"name": "Ada"}; an unknown key raises ValidationError listing the accepted ones

Each check returns the (possibly normalised) value or raises ``ValidationError``
with a message that quotes the value and says what is accepted.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ValidationError
from ._base import INT32_MAX, INT64_MAX

__all__ = [
    "check_bool",
    "check_positive_int",
    "check_count",
    "check_datetime",
    "check_fields",
]


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


def check_datetime(name: str, value: Any, *, dates: bool = False) -> _dt.datetime:
    """An aware UTC-or-other datetime; naive input is taken as UTC (a date: its midnight UTC)."""
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
    if dates and isinstance(value, _dt.date):
        return _dt.datetime.combine(value, _dt.time(), tzinfo=_dt.timezone.utc)
    wanted = "a datetime or a date" if dates else "a datetime"
    raise ValidationError(f"{name} must be {wanted}, got {value!r}.")


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
