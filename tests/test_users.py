"""Users, passwords, authentication and web sessions."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localchat import Conflict, NotFound, ValidationError
from localchat.models import Conversation, Document, Message, Response, User, WebSession, utcnow
from localchat.repository import (
    _passwords,
    authenticate,
    create_user,
    create_web_session,
    delete_user,
    delete_web_session,
    get_or_create_user_by_email,
    get_or_create_user_by_external_id,
    get_user,
    get_user_by_email,
    get_user_by_external_id,
    get_user_by_id,
    get_user_by_username,
    get_web_session,
    hash_password,
    list_users,
    new_session_token,
    password_needs_rehash,
    purge_expired_web_sessions,
    update_user,
    update_web_session,
    verify_password,
)
from localchat.repository.users import DEFAULT_WEB_SESSION_LIFETIME

FAST = (2**10, 8, 1)


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch):
    """Cheap scrypt parameters, so the suite does not spend seconds hashing."""
    monkeypatch.setattr(_passwords, "SCRYPT_PARAMS", FAST)


# -- create / get -------------------------------------------------------------


def test_create_user_takes_email_and_password_hash_positionally(s):
    stored = hash_password("pw")
    user = create_user(s, "user@example.com", stored)
    assert (user.email, user.password_hash, user.is_active) == ("user@example.com", stored, True)
    assert isinstance(user.uuid, uuid.UUID)


def test_create_user_without_any_identifier_is_allowed(s):
    user = create_user(s)
    assert user.email is None and user.username is None and get_user(s, user.id) == user


def test_create_user_keeps_every_keyword_field(s):
    user = create_user(
        s, name="Ada", username="ada", full_name="Ada Lovelace", external_id="gh|1", is_active=False
    )
    again = get_user(s, user.id)
    assert (again.name, again.username, again.full_name, again.external_id, again.is_active) == (
        "Ada",
        "ada",
        "Ada Lovelace",
        "gh|1",
        False,
    )


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Ada@Example.ORG", "ada@example.org"),
        ("  ada@example.org ", "ada@example.org"),
        ("admin@localhost", "admin@localhost"),
        ("zoë@exämple.de", "zoë@exämple.de"),
    ],
)
def test_email_is_normalised_to_lower_case_without_spaces(s, given, stored):
    assert create_user(s, given).email == stored


@pytest.mark.parametrize(
    "email",
    ["plain", "a@", "@example.org", "a b@example.org", "a@b..org", "a@.org", "a@org.", "",
     "a@b@c.org", "x" * 65 + "@example.org", "a@" + "b" * 260 + ".org", 42, b"a@b.org"],
)  # fmt: skip
def test_create_user_refuses_an_implausible_email(s, email):
    with pytest.raises(ValidationError):
        create_user(s, email)
    assert User.select().count() == 0


@pytest.mark.parametrize("username", ["has@at", " padded", "tab\tinside", "", "x" * 151])
def test_create_user_refuses_a_bad_username(s, username):
    with pytest.raises(ValidationError):
        create_user(s, username=username)


@pytest.mark.parametrize(
    "fields",
    [{"name": "x" * 256}, {"full_name": 3}, {"external_id": ""}, {"is_active": 1},
     {"password_hash": ""}, {"name": "nul\0byte"}],
)  # fmt: skip
def test_create_user_refuses_bad_field_values(s, fields):
    with pytest.raises(ValidationError):
        create_user(s, **fields)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"email": "ada@example.org"}, {"email": "ADA@example.org"}),
        ({"username": "ada"}, {"username": "ada"}),
        ({"external_id": "gh|1"}, {"external_id": "gh|1"}),
    ],
)
def test_a_taken_identifier_is_a_conflict_and_changes_nothing(s, first, second):
    create_user(s, **first)
    with pytest.raises(Conflict):
        create_user(s, name="second", **second)
    assert User.select().count() == 1
    assert create_user(s, username="afterwards")  # the session is still usable


def test_get_user_finds_by_id_uuid_string_and_uuid(s):
    user = create_user(s, "ada@example.org")
    assert get_user(s, user.id) == get_user(s, str(user.uuid)) == get_user(s, user.uuid) == user
    assert get_user_by_id(s, user.id) == user


@pytest.mark.parametrize("key", [999, "00000000-0000-4000-8000-000000000001", "not-a-key", None])
def test_get_user_returns_none_when_missing(s, key):
    create_user(s, "ada@example.org")
    assert get_user(s, key) is None


# Keys no row can have: outside SQLite's / PostgreSQL's 64-bit integers, or digits
# str.isdigit() accepts but int() refuses.
IMPOSSIBLE_IDS = [2**63, -(2**63) - 1, "99999999999999999999", "\u00b2", "1\u00b2"]


@pytest.mark.parametrize("key", IMPOSSIBLE_IDS)
def test_an_id_no_row_can_have_is_missing_not_an_error(s, key):
    create_user(s, "ada@example.org")
    assert get_user(s, key) is None
    assert update_user(s, key, name="x") is None
    assert delete_user(s, key) is False


def test_lookups_by_email_username_and_external_id(s):
    user = create_user(s, "ada@example.org", username="Ada", external_id="gh|1")
    assert get_user_by_email(s, "ADA@example.org") == user
    assert get_user_by_username(s, "Ada") == user
    assert get_user_by_username(s, "ada") is None  # usernames keep their case
    assert get_user_by_external_id(s, "gh|1") == user
    assert get_user_by_email(s, "bob@example.org") is None
    assert get_user_by_external_id(s, "gh|2") is None


def test_get_or_create_by_external_id_creates_once(s):
    user, created = get_or_create_user_by_external_id(s, "gh|1", email="a@example.org", name="A")
    again, created_again = get_or_create_user_by_external_id(s, "gh|1", name="ignored")
    assert (created, created_again) == (True, False)
    assert again == user and again.name == "A" and again.email == "a@example.org"


def test_get_or_create_by_email_creates_once_in_any_case(s):
    user, created = get_or_create_user_by_email(s, "Ada@Example.org", name="Ada")
    again, created_again = get_or_create_user_by_email(s, "ada@example.org")
    assert (created, created_again, again) == (True, False, user)
    assert User.select().count() == 1


def test_get_or_create_by_external_id_with_a_taken_email_is_a_conflict(s):
    create_user(s, "ada@example.org")
    with pytest.raises(Conflict):
        get_or_create_user_by_external_id(s, "gh|9", email="ada@example.org")
    assert get_user_by_external_id(s, "gh|9") is None


# -- list / update / delete ---------------------------------------------------


def test_list_users_pages_oldest_first(s):
    users = [create_user(s, username=f"u{i}") for i in range(5)]
    assert list_users(s) == users
    assert list_users(s, limit=2, offset=1) == users[1:3]
    assert list_users(s, limit=2, offset=5) == []


@pytest.mark.parametrize(
    ("limit", "offset"), [(0, 0), (-1, 0), (1, -1), ("10", 0), (1, 1.5), (True, 0)]
)
def test_list_users_refuses_bad_pagination(s, limit, offset):
    with pytest.raises(ValidationError):
        list_users(s, limit=limit, offset=offset)


def test_update_user_changes_given_fields_and_moves_updated_at(s):
    user = create_user(s, "ada@example.org", name="Ada")
    updated = update_user(s, user.id, email="NEW@example.org", name=None, is_active=False)
    again = get_user(s, user.id)
    assert (again.email, again.name, again.is_active) == ("new@example.org", "Ada", False)
    assert updated.updated_at >= user.created_at


def test_update_user_returns_none_when_missing(s):
    assert update_user(s, 12345, name="x") is None


@pytest.mark.parametrize("fields", [{"colour": "red"}, {"email": "nope"}, {"is_active": "no"}])
def test_update_user_refuses_unknown_fields_and_bad_values(s, fields):
    user = create_user(s, "ada@example.org")
    with pytest.raises(ValidationError):
        update_user(s, user.id, **fields)
    assert get_user(s, user.id).email == "ada@example.org"


def test_update_to_a_taken_email_is_a_conflict_and_leaves_the_row_alone(s):
    create_user(s, "ada@example.org")
    bob = create_user(s, "bob@example.org", name="Bob")
    with pytest.raises(Conflict):
        update_user(s, bob.id, email="ada@example.org", name="Robert")
    again = get_user(s, bob.id)
    assert (again.email, again.name) == ("bob@example.org", "Bob")


def test_delete_user_reports_whether_there_was_one(s):
    user = create_user(s)
    assert delete_user(s, user.id) is True
    assert delete_user(s, user.id) is False
    assert get_user(s, user.id) is None


def test_delete_user_cascades_to_everything_they_own(s):
    ada, bob = create_user(s, "ada@example.org"), create_user(s, "bob@example.org")
    for owner in (ada, bob):
        conv = Conversation.create(user=owner, title="t")
        question = Message.create(conversation=conv, role="user", content="hi")
        answer = Message.create(conversation=conv, role="assistant", content="yo", parent=question)
        Response.create(message=answer, model_used="m")
        Document.create(filename="a.txt", user=owner)
        create_web_session(s, f"token-{owner.id}", owner.id)
    assert delete_user(s, ada.id)
    counts = [m.select().count() for m in (Conversation, Message, Response, Document, WebSession)]
    assert counts == [1, 2, 1, 1, 1]  # only Bob's rows remain
    assert Conversation.get().user_id == bob.id


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.text(min_size=1, max_size=255).filter(lambda t: t.strip() and "\0" not in t),
    full_name=st.text(min_size=1, max_size=255).filter(lambda t: t.strip() and "\0" not in t),
)
def test_any_unicode_name_round_trips(s, name, full_name):
    user = create_user(s, name=name, full_name=full_name)
    again = get_user(s, str(user.uuid))
    assert (again.name, again.full_name) == (name, full_name)


# -- passwords ----------------------------------------------------------------


def test_hash_password_is_salted_and_self_describing():
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second
    assert first.startswith("scrypt$n=1024,r=8,p=1$")
    assert "s3cret" not in first
    assert verify_password("s3cret", first) and not verify_password("S3cret", first)


def test_default_cost_is_recorded_in_the_hash(monkeypatch):
    monkeypatch.undo()  # the real default, once
    n, r, p = _passwords.SCRYPT_PARAMS
    assert n * r * p >= 2**15 * 8 * 3  # OWASP's scrypt floor, as N=2**15, r=8, p=3
    assert hash_password("x").startswith(f"scrypt$n={n},r={r},p={p}$")


def test_a_hash_made_with_old_parameters_still_verifies_and_needs_rehash(monkeypatch):
    old = hash_password("s3cret")
    monkeypatch.setattr(_passwords, "SCRYPT_PARAMS", (2**11, 8, 1))
    assert verify_password("s3cret", old)
    assert password_needs_rehash(old) and not password_needs_rehash(hash_password("s3cret"))


@pytest.mark.parametrize(
    "stored",
    ["hashed_pw", "", None, "argon2$v=19$x$y", "scrypt$n=1000,r=8,p=1$AAAA$AAAA",
     "scrypt$n=4194304,r=8,p=1$AAAA$AAAA", "scrypt$n=1024,r=8$AAAA$AAAA",
     "scrypt$n=1024,r=8,p=1$$"],
)  # fmt: skip
def test_verify_password_is_false_for_a_malformed_hash(stored):
    assert verify_password("anything", stored) is False
    assert password_needs_rehash(stored) is True


# n=2**20, r=8 asks scrypt for more memory than hashlib accepts (maxmem over INT_MAX).
HUGE_SCRYPT = "scrypt$n=1048576,r=8,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"


def test_verify_password_is_false_for_parameters_scrypt_cannot_run(s):
    assert verify_password("pw", HUGE_SCRYPT) is False
    # create_user refuses it; a row written some other way is still handled
    User.create(email="huge@example.org", password_hash=HUGE_SCRYPT, username="huge")
    assert authenticate(s, "huge", "pw") is None


def test_verify_password_is_false_when_scrypt_refuses_the_parameters(monkeypatch):
    stored = hash_password("pw")

    def refuse(*args, **kwargs):
        raise ValueError("[digital envelope routines] memory limit exceeded")

    monkeypatch.setattr(hashlib, "scrypt", refuse)
    assert verify_password("pw", stored) is False


@pytest.mark.parametrize("password", ["", None, b"bytes"])
def test_hash_password_refuses_empty_or_non_text(password):
    with pytest.raises(ValidationError):
        hash_password(password)


def test_verify_password_compares_in_constant_time(monkeypatch):
    import hmac

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(
        _passwords.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b)
    )
    verify_password("x", hash_password("x"))
    assert calls == [1]


# -- authenticate -------------------------------------------------------------


@pytest.fixture
def ada(s):
    return create_user(s, "ada@example.org", hash_password("s3cret"), username="ada")


@pytest.mark.parametrize("login", ["ada@example.org", "ADA@Example.org", "ada"])
def test_authenticate_accepts_email_in_any_case_or_username(s, ada, login):
    assert authenticate(s, login, "s3cret") == ada


@pytest.mark.parametrize(
    ("login", "password"),
    [("ada", "wrong"), ("ada", ""), ("nobody", "s3cret"), ("no@example.org", "s3cret"),
     ("bad@@", "s3cret")],
)  # fmt: skip
def test_authenticate_returns_none_for_wrong_credentials(s, ada, login, password):
    assert authenticate(s, login, password) is None


def test_authenticate_refuses_an_inactive_user(s, ada):
    update_user(s, ada.id, is_active=False)
    assert authenticate(s, "ada", "s3cret") is None


def test_authenticate_refuses_a_user_without_a_usable_hash(s):
    # create_user refuses a hash it did not make; a row written some other way may hold one
    User.create(email="seed@example.org", password_hash="hashed_pw")
    create_user(s, username="nopass")
    assert authenticate(s, "seed@example.org", "hashed_pw") is None
    assert authenticate(s, "nopass", "anything") is None


def test_authenticate_does_the_same_hashing_work_for_unknown_logins(s, ada, monkeypatch):
    calls = []
    real = hashlib.scrypt
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **k: calls.append(1) or real(*a, **k))
    authenticate(s, "nobody", "x")  # warms the dummy hash up
    work = {}
    for login, password in [("nobody", "x"), ("ada", "wrong"), ("ada", "s3cret")]:
        calls.clear()
        authenticate(s, login, password)
        work[login, password] = len(calls)
    assert set(work.values()) == {1}


def test_authenticate_upgrades_a_hash_made_with_old_parameters(s, ada, monkeypatch):
    monkeypatch.setattr(_passwords, "SCRYPT_PARAMS", (2**11, 8, 1))
    assert authenticate(s, "ada", "s3cret") == ada
    stored = get_user(s, ada.id).password_hash
    assert stored.startswith("scrypt$n=2048,") and verify_password("s3cret", stored)


@pytest.mark.parametrize(("login", "password"), [("", "x"), (None, "x"), ("ada", None)])
def test_authenticate_refuses_non_text_arguments(s, login, password):
    with pytest.raises(ValidationError):
        authenticate(s, login, password)


# -- web sessions -------------------------------------------------------------

NOW = dt.datetime.now(dt.timezone.utc)
DAY = dt.timedelta(days=1)


def test_web_session_is_found_by_the_token_the_caller_holds(s, ada):
    created = create_web_session(
        s, session_id="abc123", user_id=ada.id, issued_at=NOW, expires_at=NOW + DAY
    )
    fetched = get_web_session(s, "abc123")
    assert fetched == created and fetched.user == ada
    assert fetched.token_hash == hashlib.sha256(b"abc123").hexdigest()
    assert get_web_session(s, "abc124") is None


def test_web_session_takes_naive_times_as_utc_and_expires_by_default(s, ada):
    naive = dt.datetime(2030, 1, 2, 3, 4, 5)
    sess = create_web_session(s, "t", ada.uuid, issued_at=naive)
    again = get_web_session(s, "t")
    assert again.issued_at == naive.replace(tzinfo=dt.timezone.utc)
    assert again.expires_at == again.issued_at + DEFAULT_WEB_SESSION_LIFETIME
    assert sess.user_id == ada.id


def test_the_raw_token_never_reaches_the_database_file(localchat_store):
    token = "raw-token-" + uuid.uuid4().hex
    with localchat_store.session() as s:
        user = create_user(s, username="ada")
        create_web_session(s, token, user.id, user_agent="firefox")
    localchat_store.close()
    path = localchat_store.path
    data = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert hashlib.sha256(token.encode()).hexdigest().encode() in data
    assert token.encode() not in data


@pytest.mark.parametrize(
    ("issued", "expires"), [(NOW - 2 * DAY, NOW - DAY), (NOW - DAY, NOW - dt.timedelta(seconds=1))]
)
def test_an_expired_session_is_never_returned(s, ada, issued, expires):
    create_web_session(s, "old", ada.id, issued_at=issued, expires_at=expires)
    assert get_web_session(s, "old") is None
    assert update_web_session(s, "old", user_agent="x") is None


def test_purge_removes_only_expired_sessions(s, ada):
    create_web_session(s, "old", ada.id, issued_at=NOW - 2 * DAY, expires_at=NOW - DAY)
    create_web_session(s, "older", ada.id, issued_at=NOW - 3 * DAY, expires_at=NOW - 2 * DAY)
    create_web_session(s, "live", ada.id)
    assert purge_expired_web_sessions(s) == 2
    assert purge_expired_web_sessions(s) == 0
    assert WebSession.select().count() == 1 and get_web_session(s, "live")


def test_update_web_session_changes_allowed_fields(s, ada):
    create_web_session(s, "abc", ada.id)
    before = get_web_session(s, "abc").updated_at
    updated = update_web_session(
        s, "abc", ip_net="192.168.0.0/24", user_agent="curl", expires_at=NOW + 2 * DAY
    )
    again = get_web_session(s, "abc")
    assert updated == again
    assert (again.ip_net, again.user_agent) == ("192.168.0.0/24", "curl")
    assert abs(again.expires_at - (NOW + 2 * DAY)) < dt.timedelta(seconds=1)
    assert again.updated_at >= before


def test_update_web_session_returns_none_for_an_unknown_token(s):
    assert update_web_session(s, "nope", user_agent="x") is None


@pytest.mark.parametrize(
    "fields",
    [{"user_id": 2}, {"token_hash": "x"}, {"ip_net": "999.1.1.1"}, {"expires_at": "tomorrow"},
     {"expires_at": NOW - 400 * DAY}],
)  # fmt: skip
def test_update_web_session_refuses_bad_fields(s, ada, fields):
    create_web_session(s, "abc", ada.id, user_agent="firefox")
    with pytest.raises(ValidationError):
        update_web_session(s, "abc", **fields)
    assert get_web_session(s, "abc").user_agent == "firefox"


@pytest.mark.parametrize(
    "kwargs",
    [{"session_id": ""}, {"session_id": 123}, {"ip_net": "not-an-ip"},
     {"issued_at": "2024-01-01"}, {"expires_at": NOW - DAY}, {"issued_at": NOW, "expires_at": NOW}],
)  # fmt: skip
def test_create_web_session_refuses_bad_values(s, ada, kwargs):
    arguments = {"session_id": "abc", "user_id": ada.id, **kwargs}
    with pytest.raises(ValidationError):
        create_web_session(s, **arguments)
    assert WebSession.select().count() == 0


def test_create_web_session_for_a_missing_user_is_not_found(s):
    with pytest.raises(NotFound):
        create_web_session(s, "abc", 4242)
    assert WebSession.select().count() == 0


def test_a_reused_token_is_a_conflict(s, ada):
    create_web_session(s, "abc", ada.id)
    with pytest.raises(Conflict):
        create_web_session(s, "abc", ada.id)


@pytest.mark.parametrize("ip_net", ["10.0.0.1", "192.168.0.0/24", "2001:db8::/32", "::1"])
def test_ip_net_accepts_addresses_and_networks(s, ada, ip_net):
    assert create_web_session(s, "abc", ada.id, ip_net=ip_net).ip_net == ip_net


def test_delete_web_session_reports_whether_there_was_one(s, ada):
    create_web_session(s, "abc", ada.id)
    create_web_session(s, "old", ada.id, issued_at=NOW - 2 * DAY, expires_at=NOW - DAY)
    assert delete_web_session(s, "abc") is True
    assert delete_web_session(s, "abc") is False
    assert delete_web_session(s, "old") is True  # expired sessions can be deleted too
    assert WebSession.select().count() == 0


def test_new_session_token_is_long_and_unique():
    tokens = {new_session_token() for _ in range(100)}
    assert len(tokens) == 100 and min(len(t) for t in tokens) >= 43


def test_session_expiry_is_checked_against_the_current_time(s, ada):
    create_web_session(s, "soon", ada.id, issued_at=NOW - DAY, expires_at=utcnow() + DAY)
    assert get_web_session(s, "soon") is not None


def test_a_deactivated_users_session_is_not_returned(s, ada):
    create_web_session(s, "abc", ada.id)
    update_user(s, ada.id, is_active=False)
    assert get_web_session(s, "abc") is None
    assert update_web_session(s, "abc", user_agent="x") is None
    update_user(s, ada.id, is_active=True)
    assert get_web_session(s, "abc").user == ada


def test_users_and_web_sessions_work_on_postgresql(pg_session):
    s = pg_session
    ada = create_user(s, "Ada@Example.org", hash_password("s3cret"), username="ada")
    with pytest.raises(Conflict):
        create_user(s, "ada@example.org")
    assert authenticate(s, "ada@example.org", "s3cret") == ada  # the transaction goes on
    create_web_session(s, "live", ada.id)
    create_web_session(s, "old", ada.id, issued_at=NOW - 2 * DAY, expires_at=NOW - DAY)
    assert get_web_session(s, "live").user == ada and get_web_session(s, "old") is None
    assert purge_expired_web_sessions(s) == 1
    assert delete_user(s, ada.id) and WebSession.select().count() == 0
