"""Row helpers of the repository: the generic get / update / delete / page shape.

Aggregate modules are mostly one-line wrappers over these helpers:

    @operation
    def get_user(s, user_id):           return get_row(User, user_id)
    @operation
    def delete_user(s, user_id):        return delete_row(User, user_id)

(``operation``: :mod:`localchat.operations`; ``get_row`` and every argument
check: :mod:`localchat.checks`.)
"""

from __future__ import annotations

from typing import Any, TypeVar

import peewee

from ..checks import check_page, get_row
from ..errors import ValidationError

__all__ = ["update_row", "delete_row", "paginate"]

M = TypeVar("M", bound=peewee.Model)


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


def paginate(query: peewee.ModelSelect[Any], limit: int | None = 100, offset: int = 0) -> list[Any]:
    """``query``'s page: the rows from ``offset`` on, at most ``limit`` (see :func:`check_page`)."""
    limit, offset = check_page(limit, offset)
    return list(query.limit(limit).offset(offset))
