"""Usage statistics per model and period, from the response and audit tables.

    from localchat import local_session
    from localchat.maintenance import store_stats

    with local_session("/tmp/stats-example.db") as s:   # a read session is enough
        report = store_stats(s, by="month")
    for row in report.responses:     # one per (period, model)
        print(row["period"], row["model"], row["messages"], row["tokens_total"])
    print(report.totals["responses"]["tokens_total"])

``responses`` rows count, per period and model, the assistant messages with a
recorded response (``messages``), the conversations they belong to, prompt /
completion / total tokens and the average completion time; ``audit`` rows
count the audit log's generation calls (``calls``, ``tokens``, average
generation time, ``errors``). Periods are UTC days (``2026-03-01``), weeks
(their Monday, ``2026-02-23``) or months (``2026-03``). Both queries range over
the ``created_at`` index of their table. ``plot_stats`` draws the responses as
a PNG (needs matplotlib: ``pip install 'localchat[plot]'``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks import check_choice, check_datetime, check_text, id_of
from ..database import Session
from ..errors import Unsupported
from ..models import AuditLog, Response, User
from ..operations import read_operation

__all__ = ["STATS_PERIODS", "StatsReport", "store_stats", "stats_queries", "plot_stats"]

STATS_PERIODS = ("day", "week", "month")

_SQLITE_PERIOD = {
    "day": "substr({c}, 1, 10)",
    "week": "date(substr({c}, 1, 10), 'weekday 0', '-6 days')",
    "month": "substr({c}, 1, 7)",
}
_POSTGRES_PERIOD = {
    "day": "to_char({c}, 'YYYY-MM-DD')",
    "week": "to_char(date_trunc('week', {c}), 'YYYY-MM-DD')",
    "month": "to_char({c}, 'YYYY-MM')",
}

_RESPONSE_SUMS = ("messages", "tokens_prompt", "tokens_completion", "tokens_total")
_AUDIT_SUMS = ("calls", "tokens", "errors")


@dataclass
class StatsReport:
    """Rows per (period, model) and their totals; ``to_dict()`` for JSON."""

    by: str
    responses: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "responses": self.responses,
            "audit": self.audit,
            "totals": self.totals,
        }


def stats_queries(
    s: Session,
    *,
    by: str = "day",
    since: Any = None,
    until: Any = None,
    model: str | None = None,
    user: Any = None,
) -> list[tuple[str, list[Any]]]:
    """The two SQL statements (responses, audit) and their parameters. Read-only."""
    by = check_choice("by", by, STATS_PERIODS)
    periods = _SQLITE_PERIOD if s.store.is_sqlite else _POSTGRES_PERIOD
    r_where, r_params = _range("r", Response, since, until)
    a_where, a_params = _range("a", AuditLog, since, until)
    if model is not None:
        model = check_text("model", model)
        r_where.append("r.model_used = %s")
        r_params.append(model)
        a_where.append("a.model_used = %s")
        a_params.append(model)
    join = ""
    if user is not None:
        owner, caller = _user(user)
        join = "JOIN conversation c ON c.id = m.conversation_id "
        r_where.append("c.user_id = %s")
        r_params.append(owner if owner is not None else -1)
        a_where.append("a.user_id IN (%s, %s)")
        a_params += [caller, str(owner) if owner is not None else caller]
    rp = periods[by].format(c="r.created_at")
    ap = periods[by].format(c="a.created_at")
    responses = (
        f"SELECT {rp} AS period, r.model_used, count(*), count(DISTINCT m.conversation_id), "
        "sum(r.tokens_prompt), sum(r.tokens_completion), sum(r.tokens_total), "
        "avg(r.completion_time_ms) "
        f"FROM response r JOIN message m ON m.id = r.message_id {join}"
        f"{_where(r_where)} GROUP BY 1, 2 ORDER BY 1, 2"
    )
    audit = (
        f"SELECT {ap} AS period, coalesce(a.model_used, ''), count(*), sum(a.tokens_used), "
        "avg(a.generation_time_ms), sum(CASE WHEN a.status = 'success' THEN 0 ELSE 1 END) "
        f"FROM audit_log a {_where(a_where)} GROUP BY 1, 2 ORDER BY 1, 2"
    )
    mark = "?" if s.store.is_sqlite else "%s"
    return [
        (responses.replace("%s", mark), r_params),
        (audit.replace("%s", mark), a_params),
    ]


@read_operation
def store_stats(
    s: Session,
    *,
    by: str = "day",
    since: Any = None,
    until: Any = None,
    model: str | None = None,
    user: Any = None,
) -> StatsReport:
    """Conversations, messages, tokens and times per model and ``by`` period. Read-only.

    ``since`` / ``until`` bound ``created_at`` (``since`` included); ``model``
    keeps one model; ``user`` keeps one user's conversations (an id, uuid or
    email) and the audit rows whose ``user_id`` is that text (or the id).
    """
    (r_sql, r_params), (a_sql, a_params) = stats_queries(
        s, by=by, since=since, until=until, model=model, user=user
    )
    report = StatsReport(check_choice("by", by, STATS_PERIODS))
    for period, name, n, convs, tp, tc, tt, avg in s.db.execute_sql(r_sql, r_params):
        report.responses.append(
            {
                "period": str(period),
                "model": name,
                "messages": n,
                "conversations": convs,
                "tokens_prompt": int(tp or 0),
                "tokens_completion": int(tc or 0),
                "tokens_total": int(tt or 0),
                "avg_completion_ms": None if avg is None else round(float(avg), 1),
            }
        )
    for period, name, n, tokens, avg, errors in s.db.execute_sql(a_sql, a_params):
        report.audit.append(
            {
                "period": str(period),
                "model": name or None,
                "calls": n,
                "tokens": int(tokens or 0),
                "avg_generation_ms": None if avg is None else round(float(avg), 1),
                "errors": int(errors or 0),
            }
        )
    report.totals = {
        "responses": {k: sum(r[k] for r in report.responses) for k in _RESPONSE_SUMS},
        "audit": {k: sum(r[k] for r in report.audit) for k in _AUDIT_SUMS},
    }
    return report


def plot_stats(report: StatsReport, path: str | Path) -> Path:
    """Draw total tokens per period and model as a PNG at ``path``.

    Raises :class:`~localchat.errors.Unsupported` when matplotlib is missing.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise Unsupported(
            "plotting needs matplotlib, which is not installed: "
            "pip install 'localchat[plot]' (or pip install matplotlib)."
        ) from None
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise Unsupported(f"the plot is a PNG: give a path ending in .png, not {target.name!r}.")
    periods = sorted({r["period"] for r in report.responses})
    models = sorted({r["model"] for r in report.responses})
    fig, ax = plt.subplots(figsize=(10, 4.5))
    try:
        for name in models:
            by_period = {r["period"]: r["tokens_total"] for r in report.responses
                         if r["model"] == name}  # fmt: skip
            ax.plot(periods, [by_period.get(p, 0) for p in periods], marker="o", label=name)
        ax.set_title(f"tokens per {report.by} and model")
        ax.set_xlabel(report.by)
        ax.set_ylabel("tokens (total)")
        if models:
            ax.legend()
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(target, format="png")
    finally:
        plt.close(fig)
    return target


def _range(alias: str, model: Any, since: Any, until: Any) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    field_ = model.created_at
    if since is not None:
        where.append(f"{alias}.created_at >= %s")
        params.append(field_.db_value(check_datetime("since", since, dates=True)))
    if until is not None:
        where.append(f"{alias}.created_at < %s")
        params.append(field_.db_value(check_datetime("until", until, dates=True)))
    return where, params


def _where(conditions: list[str]) -> str:
    return ("WHERE " + " AND ".join(conditions)) if conditions else ""


def _user(key: Any) -> tuple[int | None, str]:
    """The user's row id (None: no such user) and the audit ``user_id`` text to match."""
    if isinstance(key, str) and "@" in key:
        row = User.get_or_none(User.email == key.strip().lower())
        return (row.id if row is not None else None), key
    owner = id_of(User, key, "user")
    return owner, str(key)
