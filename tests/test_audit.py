"""The audit log: recording generation events and the analytics asked of it."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localchat import ValidationError
from localchat.models import AuditLog
from localchat.repository import (
    average_generation_time_ms,
    average_generation_time_per_model,
    count_generations_per_user,
    error_rate,
    get_audit_log,
    list_audit_logs_between,
    list_audit_logs_for_user,
    log_generation,
    tokens_per_model_per_day,
)

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def log(s, user_id="user_123", *, at=None, **fields):
    """One entry, optionally back-dated to ``at``."""
    fields.setdefault("document_type", "treatment_summary")
    fields.setdefault("input_data", {"q": 1})
    fields.setdefault("generated_text", {"a": 2})
    entry = log_generation(s, user_id, **fields)
    if at is not None:
        AuditLog.update(created_at=at).where(AuditLog.id == entry.id).execute()
    return AuditLog.get_by_id(entry.id)


# -- recording ----------------------------------------------------------------


def test_log_generation_as_the_reference_calls_it(s):
    entry = log_generation(
        s,
        user_id="user_123",
        document_type="treatment_summary",
        input_data={"treatment_type": "clear aligners"},
        generated_text={"title": "Your Treatment Plan"},
        tokens_used=450,
        generation_time_ms=1250,
    )
    again = get_audit_log(s, entry.id)
    assert again.input_data == {"treatment_type": "clear aligners"}
    assert again.generated_text == {"title": "Your Treatment Plan"}
    # No model named, none assumed (the default was once one app's "gpt-4o").
    assert (again.model_used, again.document_version, again.status) == (None, "1.0", "success")
    assert (again.tokens_used, again.generation_time_ms, again.error_message) == (450, 1250, None)
    assert again.created_at.tzinfo is not None and isinstance(again.uuid, uuid.UUID)


def test_log_generation_records_a_failure(s):
    entry = log_generation(
        s,
        user_id="user_123",
        document_type="treatment_summary",
        input_data={"treatment_type": "x"},
        generated_text={},
        status="error",
        error_message="upstream timed out",
        document_version="2.1",
        model_used="claude-3",
    )
    again = get_audit_log(s, str(entry.uuid))
    assert (again.status, again.error_message, again.generated_text) == (
        "error",
        "upstream timed out",
        {},
    )
    assert (again.document_version, again.model_used) == ("2.1", "claude-3")


def test_an_integer_user_id_is_stored_as_text(s):
    log(s, 42)
    assert [e.user_id for e in list_audit_logs_for_user(s, 42)] == ["42"]
    assert len(list_audit_logs_for_user(s, "42")) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "failed"},
        {"status": None},
        {"input_data": "{'q': 1}"},
        {"input_data": None},
        {"input_data": [1, 2]},
        {"generated_text": {"x": float("nan")}},
        {"generated_text": {"x": object()}},
        {"tokens_used": -1},
        {"tokens_used": "450"},
        {"tokens_used": True},
        {"tokens_used": 2**63},
        {"generation_time_ms": -5},
        {"generation_time_ms": 1.5},
        {"document_type": ""},
        {"model_used": ""},
        {"document_version": None},
        {"error_message": 500},
    ],
)
def test_log_generation_refuses_bad_values_and_writes_nothing(s, fields):
    with pytest.raises(ValidationError):
        log(s, **fields)
    assert AuditLog.select().count() == 0


@pytest.mark.parametrize("user_id", ["", None, 1.5, ["u"]])
def test_log_generation_needs_a_user_id(s, user_id):
    with pytest.raises(ValidationError):
        log(s, user_id)


def test_get_audit_log_returns_none_when_missing(s):
    assert get_audit_log(s, 1) is None
    assert get_audit_log(s, str(uuid.uuid4())) is None


# Any text JSONB stores: no NUL, no lone surrogate.
TEXT = st.text(st.characters(exclude_characters="\0", exclude_categories=["Cs"]))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | TEXT
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(TEXT, JSON, max_size=5), text=TEXT)
def test_any_json_payload_round_trips(s, data, text):
    entry = log(s, "u", input_data=data, generated_text={"text": text})
    again = get_audit_log(s, entry.id)
    assert (again.input_data, again.generated_text) == (data, {"text": text})


# -- history and ranges -------------------------------------------------------


def test_a_users_history_is_newest_first_and_paged(s):
    entries = [log(s, at=T0 + dt.timedelta(hours=i)) for i in range(4)]
    log(s, "someone_else")
    history = list_audit_logs_for_user(s, "user_123")
    assert history == entries[::-1]
    assert list_audit_logs_for_user(s, "user_123", limit=2, offset=1) == entries[2:0:-1]
    assert list_audit_logs_for_user(s, "nobody") == []


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (-1, 0), (1, -1), (2.0, 0), (1, "0")])
def test_history_and_range_refuse_bad_pagination(s, limit, offset):
    with pytest.raises(ValidationError):
        list_audit_logs_for_user(s, "u", limit=limit, offset=offset)
    with pytest.raises(ValidationError):
        list_audit_logs_between(s, T0, limit=limit, offset=offset)


def test_range_includes_since_excludes_until_and_is_oldest_first(s):
    days = [log(s, at=T0 + dt.timedelta(days=i)) for i in range(5)]
    assert list_audit_logs_between(s, T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=3)) == [
        days[1],
        days[2],
    ]
    assert list_audit_logs_between(s, T0 + dt.timedelta(days=3)) == days[3:]
    assert list_audit_logs_between(s, T0, limit=2, offset=1) == days[1:3]


def test_range_takes_dates_as_utc_days_and_naive_times_as_utc(s):
    late = log(s, at=dt.datetime(2024, 3, 1, 23, 30, tzinfo=UTC))
    log(s, at=dt.datetime(2024, 3, 2, 0, 30, tzinfo=UTC))
    assert list_audit_logs_between(s, dt.date(2024, 3, 1), dt.date(2024, 3, 2)) == [late]
    assert list_audit_logs_between(s, dt.datetime(2024, 3, 1, 23), dt.datetime(2024, 3, 2)) == [
        late
    ]
    # 01:30 at UTC+02:00 is 23:30 UTC the day before
    eastern = dt.timezone(dt.timedelta(hours=2))
    since = dt.datetime(2024, 3, 2, 1, 30, tzinfo=eastern)
    assert list_audit_logs_between(s, since, since + dt.timedelta(minutes=1)) == [late]


@pytest.mark.parametrize(
    ("since", "until"), [(None, None), ("2024-03-01", None), (T0, T0 - dt.timedelta(seconds=1))]
)
def test_range_refuses_a_missing_unparsed_or_backwards_window(s, since, until):
    with pytest.raises(ValidationError):
        list_audit_logs_between(s, since, until)


# -- analytics ----------------------------------------------------------------


def test_generations_are_counted_per_user_including_errors(s):
    for user in ["a", "a", "b"]:
        log(s, user, at=T0)
    log(s, "a", status="error", error_message="x", at=T0 + dt.timedelta(days=2))
    assert count_generations_per_user(s) == {"a": 3, "b": 1}
    assert count_generations_per_user(s, since=T0 + dt.timedelta(days=1)) == {"a": 1}
    assert count_generations_per_user(s, until=T0) == {}


def test_average_generation_time_counts_only_timed_successes(s):
    assert average_generation_time_ms(s) is None
    log(s, generation_time_ms=1000, at=T0)
    log(s, generation_time_ms=2000, at=T0 + dt.timedelta(days=1))
    log(s, generation_time_ms=None)
    log(s, generation_time_ms=9000, status="error")
    assert average_generation_time_ms(s) == 1500.0
    assert average_generation_time_ms(s, since=T0 + dt.timedelta(hours=1), until=T0.replace(
        year=2025)) == 2000.0  # fmt: skip


def test_average_generation_time_is_kept_per_model_for_timed_successes(s):
    assert average_generation_time_per_model(s) == {}
    log(s, model_used="gpt-4o", generation_time_ms=1000, at=T0)
    log(s, model_used="gpt-4o", generation_time_ms=3000, at=T0 + dt.timedelta(days=1))
    log(s, model_used="llama3", generation_time_ms=500, at=T0)
    log(s, model_used="llama3", generation_time_ms=None)
    log(s, model_used="mistral", generation_time_ms=9000, status="error")
    log(s, generation_time_ms=700, at=T0)
    assert average_generation_time_per_model(s) == {"gpt-4o": 2000.0, "llama3": 500.0, None: 700.0}
    assert average_generation_time_per_model(s, since=T0 + dt.timedelta(hours=1)) == {
        "gpt-4o": 3000.0
    }


def test_error_rate_is_errors_over_all_entries(s):
    assert error_rate(s) == 0.0
    for status in ["success", "success", "success", "error"]:
        log(s, status=status, at=T0)
    log(s, status="error", at=T0 + dt.timedelta(days=1))
    assert error_rate(s) == pytest.approx(2 / 5)
    assert error_rate(s, until=T0 + dt.timedelta(hours=1)) == pytest.approx(1 / 4)
    assert error_rate(s, since=T0 + dt.timedelta(days=1)) == 1.0
    assert error_rate(s, since=T0 + dt.timedelta(days=9)) == 0.0


def test_tokens_are_summed_per_model_per_utc_day(s):
    day1, day2 = dt.date(2024, 3, 1), dt.date(2024, 3, 2)
    log(s, model_used="gpt-4o", tokens_used=100, at=T0)
    log(s, model_used="gpt-4o", tokens_used=50, at=T0 + dt.timedelta(hours=11, minutes=59))
    log(s, model_used="gpt-4o", tokens_used=7, at=T0 + dt.timedelta(hours=12))  # 00:00 next day
    log(s, model_used="claude-3", tokens_used=30, status="error", at=T0)
    log(s, model_used="claude-3", tokens_used=None, at=T0)
    assert tokens_per_model_per_day(s) == [
        (day1, "claude-3", 30),
        (day1, "gpt-4o", 150),
        (day2, "gpt-4o", 7),
    ]
    assert tokens_per_model_per_day(s, since=day2) == [(day2, "gpt-4o", 7)]
    assert tokens_per_model_per_day(s, until=day1) == []
    assert all(isinstance(day, dt.date) for day, _, _ in tokens_per_model_per_day(s))


@pytest.mark.parametrize(
    "query", [count_generations_per_user, average_generation_time_ms, error_rate,
              average_generation_time_per_model,
              tokens_per_model_per_day],
)  # fmt: skip
def test_every_aggregate_refuses_a_backwards_window(s, query):
    with pytest.raises(ValidationError):
        query(s, since=T0, until=T0 - dt.timedelta(days=1))


# -- PostgreSQL ---------------------------------------------------------------


def test_day_buckets_and_time_windows_work_on_postgresql(pg_session):
    s = pg_session
    log(s, model_used="gpt-4o", tokens_used=100, generation_time_ms=10, at=T0)
    log(s, model_used="gpt-4o", tokens_used=7, at=T0 + dt.timedelta(hours=12))
    log(s, "b", status="error", error_message="x", at=T0 + dt.timedelta(hours=12))
    day1, day2 = dt.date(2024, 3, 1), dt.date(2024, 3, 2)
    assert tokens_per_model_per_day(s) == [(day1, "gpt-4o", 100), (day2, "gpt-4o", 7)]
    assert list_audit_logs_between(s, day2)[0].created_at == T0 + dt.timedelta(hours=12)
    assert count_generations_per_user(s, until=day2) == {"user_123": 1}
    assert (error_rate(s), average_generation_time_ms(s)) == (pytest.approx(1 / 3), 10.0)
    with pytest.raises(ValidationError):
        log(s, status="failed")
    assert len(list_audit_logs_for_user(s, "user_123")) == 2  # the transaction goes on
