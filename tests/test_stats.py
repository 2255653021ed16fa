"""Usage statistics: totals equal the rows' sums, periods group right, queries use indexes."""

from __future__ import annotations

import datetime as dt
import json
import sys

import pytest

from localchat import Unsupported, ValidationError, local_session
from localchat.cli import main
from localchat.maintenance import plot_stats, store_stats
from localchat.maintenance.stats import stats_queries
from localchat.models import AuditLog, Response
from localchat.repository import (
    add_message,
    create_conversation,
    create_user,
    log_generation,
    record_response,
)

UTC = dt.timezone.utc
# Monday 2026-03-02, Sunday 2026-03-08, Monday 2026-03-09, 2026-04-01
WHEN = [
    dt.datetime(2026, 3, 2, 9, tzinfo=UTC),
    dt.datetime(2026, 3, 8, 23, 59, tzinfo=UTC),
    dt.datetime(2026, 3, 9, 0, 1, tzinfo=UTC),
    dt.datetime(2026, 4, 1, 12, tzinfo=UTC),
]


@pytest.fixture
def usage(s):
    return seed(s)


def seed(s):
    ada = create_user(s, "ada@example.org")
    bob = create_user(s, "bob@example.org")
    rows = []
    for i, at in enumerate(WHEN):
        for owner, model in ((ada, "llama3"), (bob, "mistral"), (ada, "llama3")):
            conv = create_conversation(s, owner.id, f"c{i}")
            add_message(s, conv.id, "user", "question")
            reply = add_message(s, conv.id, "assistant", "answer", model=model)
            r = record_response(s, reply.id, model, 10 + i, 20 * (i + 1), None, 100 * (i + 1))
            Response.update(created_at=at).where(Response.id == r.id).execute()
            rows.append((at, owner.id, model, 10 + i, 20 * (i + 1), 100 * (i + 1), conv.id))
        log = log_generation(s, str(ada.id), "summary", {}, {}, "llama3", 7, 50)
        AuditLog.update(created_at=at).where(AuditLog.id == log.id).execute()
    log_generation(s, "ext", "summary", {}, {}, None, 3, None, status="error", error_message="x")
    return ada, bob, rows


def test_stats_totals_equal_the_sums_of_the_rows(s, usage):
    _, _, rows = usage
    report = store_stats(s, by="day")
    t = report.totals["responses"]
    assert t["messages"] == len(rows)
    assert t["tokens_prompt"] == sum(r[3] for r in rows)
    assert t["tokens_completion"] == sum(r[4] for r in rows)
    assert t["tokens_total"] == sum(r[3] + r[4] for r in rows)
    assert report.totals["audit"] == {"calls": 5, "tokens": 4 * 7 + 3, "errors": 1}
    first = [r for r in report.responses if r["period"] == "2026-03-02"]
    assert [(r["model"], r["messages"], r["conversations"]) for r in first] == [
        ("llama3", 2, 2),
        ("mistral", 1, 1),
    ]
    assert first[0]["avg_completion_ms"] == 100.0


def test_weeks_start_on_monday_and_months_group_by_calendar_month(s, usage):
    weeks = store_stats(s, by="week")
    assert sorted({r["period"] for r in weeks.responses}) == [
        "2026-03-02",
        "2026-03-09",
        "2026-03-30",
    ]
    months = store_stats(s, by="month")
    march = [r for r in months.responses if r["period"] == "2026-03"]
    assert sum(r["messages"] for r in march) == 9


def test_stats_filter_by_model_user_and_time(s, usage):
    ada, _, rows = usage
    only = store_stats(s, model="mistral")
    assert {r["model"] for r in only.responses} == {"mistral"}
    assert only.totals["responses"]["messages"] == 4
    mine = store_stats(s, user="ada@example.org", by="month")
    assert mine.totals["responses"]["messages"] == 8
    assert mine.totals["audit"]["calls"] == 4
    march = store_stats(s, since=dt.date(2026, 3, 1), until=dt.date(2026, 4, 1))
    assert march.totals["responses"]["messages"] == 9
    assert store_stats(s, user=10_000).responses == []


def test_bad_arguments_raise_validation_errors(s):
    with pytest.raises(ValidationError, match="by 'year'"):
        store_stats(s, by="year")
    with pytest.raises(ValidationError):
        store_stats(s, since="yesterday")


def test_stats_queries_range_over_the_created_at_indexes(s, usage):
    since, until = dt.datetime(2025, 4, 1, tzinfo=UTC), dt.datetime(2026, 4, 1, tzinfo=UTC)
    (r_sql, r_params), (a_sql, a_params) = stats_queries(s, since=since, until=until)
    plan = " ".join(str(row) for row in s.db.execute_sql("EXPLAIN QUERY PLAN " + r_sql, r_params))
    assert "USING INDEX response_created_at" in plan, plan
    assert "m USING INTEGER PRIMARY KEY" in plan, plan
    plan = " ".join(str(row) for row in s.db.execute_sql("EXPLAIN QUERY PLAN " + a_sql, a_params))
    assert "USING INDEX auditlog_created_at" in plan, plan


def test_plot_writes_a_png(s, usage, tmp_path):
    target = plot_stats(store_stats(s), tmp_path / "usage.png")
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_how_to_install_it(s, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(Unsupported, match=r"pip install 'localchat\[plot\]'"):
        plot_stats(store_stats(s), tmp_path / "usage.png")
    assert not (tmp_path / "usage.png").exists()


def test_stats_command_prints_json_text_and_a_plot(db_path, tmp_path, capsys):
    with local_session(db_path) as s:
        conv = create_conversation(s, create_user(s, "ada@example.org").id, "c")
        reply = add_message(s, conv.id, "assistant", "answer", model="llama3")
        record_response(s, reply.id, "llama3", 5, 7, None, 80)
    assert main(["--db", str(db_path), "stats", "--by", "month", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["totals"]["responses"]["tokens_total"] == 12
    assert main(["--db", str(db_path), "stats", "--model", "llama3"]) == 0
    assert "total: 1 messages, 12 tokens" in capsys.readouterr().out


def test_stats_command_without_matplotlib_exits_2_with_the_reason(db_path, tmp_path, capsys,
                                                                 monkeypatch):  # fmt: skip
    with local_session(db_path):
        pass
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["--db", str(db_path), "stats", "--plot", str(tmp_path / "u.png")]) == 2
    assert "localchat[plot]" in capsys.readouterr().err


def test_stats_on_postgresql_group_like_sqlite(pg_session):
    _, _, rows = seed(pg_session)
    weeks = store_stats(pg_session, by="week", user="ada@example.org")
    assert sorted({r["period"] for r in weeks.responses}) == [
        "2026-03-02",
        "2026-03-09",
        "2026-03-30",
    ]
    assert weeks.totals["responses"]["messages"] == 8
    days = store_stats(pg_session, by="day")
    assert days.totals["responses"]["tokens_total"] == sum(r[3] + r[4] for r in rows)
    assert days.totals["audit"]["calls"] == 5
