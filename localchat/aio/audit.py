"""The async audit-log API of the source documents, under their names.

    from localchat.aio import get_recent_logs, get_session, get_user_history, init_db
    from localchat.aio import error_rate, log_generation

    await init_db()                                   # at start-up
    async for session in get_session():               # or Depends(get_session)
        await log_generation(session=session, user_id="user_123",
                             document_type="summary",
                             input_data={"topic": "release notes"},
                             generated_text={"title": "What changed"},
                             tokens_used=450, generation_time_ms=1250)
        logs = await get_user_history("user_123", session)
        recent = await get_recent_logs(session)       # the last 7 days
        rate = await error_rate(session)

``log_generation`` and the analytics (``count_generations_per_user``,
``average_generation_time_ms``, ``average_generation_time_per_model``,
``error_rate``, ``tokens_per_model_per_day``) are the bridged functions of
:mod:`localchat.repository.audit`; the two queries the document writes inline
are given here as functions over the same repository functions.
"""

from __future__ import annotations

import datetime as _dt

from ..models import AuditLog, utcnow
from ..repository.audit import list_audit_logs_between, list_audit_logs_for_user
from .store import AsyncSession

__all__ = ["get_user_history", "get_recent_logs"]


async def get_user_history(
    user_id: str, session: AsyncSession, limit: int | None = None
) -> list[AuditLog]:
    """Every entry of one user, newest first (``limit``: at most that many)."""
    return await session.run(list_audit_logs_for_user, user_id, limit=limit)


async def get_recent_logs(
    session: AsyncSession, days: float = 7, limit: int | None = None
) -> list[AuditLog]:
    """The entries of the last ``days`` days (7 by default), oldest first."""
    since = utcnow() - _dt.timedelta(days=days)
    return await session.run(list_audit_logs_between, since, limit=limit)
