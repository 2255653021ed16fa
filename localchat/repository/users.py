"""Users, their passwords and their web-UI sessions.

    from localchat import local_session
    from localchat.repository import (
        authenticate, create_user, create_web_session, get_web_session, hash_password)

    with local_session() as s:
        ada = create_user(s, "ada@example.org", hash_password("s3cret"), username="ada")
        assert authenticate(s, "ada", "s3cret") == ada
        create_web_session(s, "token-the-browser-holds", ada.id)
        get_web_session(s, "token-the-browser-holds").user == ada

E-mail addresses are checked for plain sanity (one ``@``, no spaces, a
dotted-label domain) and stored lower-cased, so lookups and uniqueness ignore
case. A username may not contain ``@``, so a login is never ambiguous.

Passwords: ``hash_password`` uses the standard library's scrypt; the stored
string carries its parameters and salt (see ``localchat.repository._passwords``
for the choice of KDF and cost). Only such a hash is ever stored: ``create_user``
and ``update_user`` refuse any other ``password_hash`` (a plain password, another
library's hash), and ``set_password(s, user_id, "pw")`` hashes for the caller.
``to_dict()`` of a user or a web session leaves the hashes out. Web sessions:
only the sha256 of the token the caller holds is stored, and an expired session
(or one of a deactivated user) is never returned.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import ipaddress
import secrets
from typing import Any

from ..checks import check_bool, check_datetime, check_fields, check_text, get_row
from ..database import Session
from ..errors import NotFound, ValidationError
from ..models import User, WebSession, utcnow
from ..operations import operation
from . import _passwords
from ._base import delete_row, paginate, update_row
from ._passwords import hash_password, is_password_hash, password_needs_rehash, verify_password
from .documents import release_owned_files

__all__ = [
    "create_user",
    "get_user",
    "get_user_by_email",
    "get_user_by_username",
    "get_user_by_external_id",
    "get_or_create_user_by_external_id",
    "get_or_create_user_by_email",
    "list_users",
    "update_user",
    "set_password",
    "delete_user",
    "hash_password",
    "verify_password",
    "password_needs_rehash",
    "authenticate",
    "DEFAULT_WEB_SESSION_LIFETIME",
    "new_session_token",
    "create_web_session",
    "get_web_session",
    "update_web_session",
    "delete_web_session",
    "purge_expired_web_sessions",
]

#: How long a web session lives when ``create_web_session`` gets no ``expires_at``.
DEFAULT_WEB_SESSION_LIFETIME = _dt.timedelta(days=30)

_MAX = 255  # CharField length, enforced here so SQLite and PostgreSQL agree


# -- validation ---------------------------------------------------------------


def _email(value: Any) -> str:
    """``value`` stripped and lower-cased if it looks like an address."""
    text = check_text("email", value, max_length=254).strip().lower()
    local, at, domain = text.rpartition("@")
    labels = domain.split(".")
    if (
        not at
        or not local
        or "@" in local
        or len(local) > 64
        or any(ch.isspace() or not ch.isprintable() for ch in text)
        or not all(labels)
    ):
        raise ValidationError(
            f"email {value!r} is not an address like 'name@example.org' "
            "(one @, no spaces, a domain of non-empty dot-separated labels)."
        )
    return text


def _username(value: Any) -> str:
    text = check_text("username", value, max_length=150)
    if text != text.strip() or "@" in text or not text.isprintable():
        raise ValidationError(
            f"username {value!r} must not contain '@', control characters, "
            "or leading/trailing spaces."
        )
    return text


def _given_text(name: str, value: Any) -> str:
    """A text field that was given (check_fields drops None): a non-empty string."""
    return check_text(name, value, max_length=_MAX)


def _password_hash(value: Any) -> str:
    """Only a hash made by ``hash_password``: a plain password must never be stored."""
    text = _given_text("password_hash", value)
    if not is_password_hash(text):
        raise ValidationError(
            "password_hash is not a hash made by hash_password() (it looks like "
            "'scrypt$n=...$<salt>$<key>'); store a password with "
            "set_password(s, user_id, password), or pass hash_password(password)."
        )
    return text


_USER_FIELDS = {
    "email": _email,
    "username": _username,
    "external_id": lambda v: _given_text("external_id", v),
    "name": lambda v: _given_text("name", v),
    "full_name": lambda v: _given_text("full_name", v),
    "password_hash": _password_hash,
    "is_active": lambda v: check_bool("is_active", v),
}


def _user_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` checked and normalised; None values are left out."""
    return check_fields("user", _USER_FIELDS, fields)


# -- users --------------------------------------------------------------------


@operation
def create_user(
    s: Session,
    email: str | None = None,
    password_hash: str | None = None,
    *,
    name: str | None = None,
    username: str | None = None,
    full_name: str | None = None,
    external_id: str | None = None,
    is_active: bool = True,
) -> User:
    """A new user; every identifier is optional. A taken one raises ``Conflict``.

    ``password_hash`` must come from ``hash_password`` (a plain password or
    another library's hash is a ValidationError).
    """
    fields = _user_fields(
        dict(
            email=email,
            password_hash=password_hash,
            name=name,
            username=username,
            full_name=full_name,
            external_id=external_id,
            is_active=is_active,
        )
    )
    return User.create(**fields)


@operation
def get_user(s: Session, user_id: int | str) -> User | None:
    """The user with this id or uuid, or None."""
    return get_row(User, user_id)


get_user_by_id = get_user  # an alias (localchat.compat), not in __all__


@operation
def get_user_by_email(s: Session, email: str) -> User | None:
    """The user with this e-mail address (any case), or None."""
    return User.get_or_none(User.email == _email(email))


@operation
def get_user_by_username(s: Session, username: str) -> User | None:
    """The user with this username (exact case), or None."""
    return User.get_or_none(User.username == check_text("username", username))


@operation
def get_user_by_external_id(s: Session, external_id: str) -> User | None:
    """The user an outside auth system knows by ``external_id``, or None."""
    return User.get_or_none(User.external_id == check_text("external_id", external_id))


def _get_or_create(s: Session, where: Any, fields: dict[str, Any]) -> tuple[User, bool]:
    user = User.get_or_none(where)
    if user is not None:
        return user, False
    return create_user(s, **fields), True


@operation
def get_or_create_user_by_external_id(
    s: Session, external_id: str, email: str | None = None, name: str | None = None
) -> tuple[User, bool]:
    """``(user, created)`` for ``external_id``; email/name are used only on creation."""
    external_id = _given_text("external_id", external_id)
    return _get_or_create(
        s, User.external_id == external_id, dict(external_id=external_id, email=email, name=name)
    )


@operation
def get_or_create_user_by_email(
    s: Session, email: str, name: str | None = None
) -> tuple[User, bool]:
    """``(user, created)`` for ``email``; ``name`` is used only on creation."""
    email = _email(email)
    return _get_or_create(s, User.email == email, dict(email=email, name=name))


@operation
def list_users(s: Session, limit: int | None = 100, offset: int = 0) -> list[User]:
    """Users, oldest first."""
    return paginate(User.select().order_by(User.id), limit, offset)


@operation
def update_user(s: Session, user_id: int | str, **fields: Any) -> User | None:
    """Set the given fields (None = leave alone); None if the user is missing.

    Accepted: email, username, external_id, name, full_name, password_hash, is_active.
    ``password_hash`` must come from ``hash_password`` (ValidationError
    otherwise); :func:`set_password` hashes a password for you.
    """
    return update_row(get_row(User, user_id), _user_fields(fields))


@operation
def set_password(s: Session, user_id: int | str, password: str) -> User | None:
    """Hash ``password`` (``hash_password``) and store it; None if the user is missing."""
    return update_user(s, user_id, password_hash=hash_password(password))


@operation
def delete_user(s: Session, user_id: int | str) -> bool:
    """Delete a user with their conversations, messages, responses, sessions, documents."""
    release_owned_files(s, user_id=user_id)  # files no other document uses go after commit
    return delete_row(User, user_id)


@operation
def authenticate(s: Session, login: str, password: str) -> User | None:
    """The active user whose e-mail or username is ``login`` and password matches.

    Unknown logins, inactive users and wrong passwords all return None after the
    same amount of hashing work. A hash made with older parameters is replaced.
    """
    check_text("login", login)
    if not isinstance(password, str):
        raise ValidationError(f"password must be a string, got {type(password).__name__}.")
    user = None
    if "@" in login:
        try:
            user = User.get_or_none(User.email == _email(login))
        except ValidationError:
            user = None
    else:
        user = User.get_or_none(User.username == login)
    if user is None or not password or not user.password_hash:
        _passwords.burn_verify(password or "-")
        return None
    if not verify_password(password, user.password_hash) or not user.is_active:
        return None
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        user.save()
    return user


# -- web sessions -------------------------------------------------------------


def new_session_token() -> str:
    """A fresh unguessable token (256 bits, URL-safe) for ``create_web_session``."""
    return secrets.token_urlsafe(32)


def _token_hash(token: Any) -> str:
    return hashlib.sha256(check_text("token", token).encode("utf-8")).hexdigest()


def _ip_net(value: Any) -> str:
    text = check_text("ip_net", value, max_length=64)
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise ValidationError(
            f"ip_net {value!r} is not an IP address or network like '192.168.0.0/24'."
        ) from exc
    return text


def _check_window(issued_at: _dt.datetime, expires_at: _dt.datetime) -> None:
    if expires_at <= issued_at:
        raise ValidationError(
            f"expires_at {expires_at.isoformat()} must be later than "
            f"issued_at {issued_at.isoformat()}."
        )


def _live(token: Any) -> WebSession | None:
    """The unexpired session of an active user for ``token``, or None."""
    query = (
        WebSession.select(WebSession, User)
        .join(User)
        .where(
            (WebSession.token_hash == _token_hash(token))
            & (WebSession.expires_at.is_null() | (WebSession.expires_at > utcnow()))
            & (User.is_active == True)  # noqa: E712 (a SQL expression)
        )
    )
    return query.first()


@operation
def create_web_session(
    s: Session,
    session_id: str,
    user_id: int | str,
    issued_at: _dt.datetime | None = None,
    expires_at: _dt.datetime | None = None,
    ip_net: str | None = None,
    user_agent: str | None = None,
) -> WebSession:
    """Store a session for the token ``session_id`` (only its sha256 is kept).

    ``expires_at`` defaults to ``issued_at + DEFAULT_WEB_SESSION_LIFETIME``.
    """
    token_hash = _token_hash(session_id)
    user = get_row(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id!r} does not exist.")
    issued = check_datetime("issued_at", issued_at) if issued_at is not None else utcnow()
    if expires_at is None:
        expires = issued + DEFAULT_WEB_SESSION_LIFETIME
    else:
        expires = check_datetime("expires_at", expires_at)
    _check_window(issued, expires)
    return WebSession.create(
        token_hash=token_hash,
        user=user,
        issued_at=issued,
        expires_at=expires,
        ip_net=_ip_net(ip_net) if ip_net is not None else None,
        user_agent=check_text("user_agent", user_agent, allow_empty=True, max_length=2048)
        if user_agent is not None
        else None,
    )


@operation
def get_web_session(s: Session, token: str) -> WebSession | None:
    """The unexpired session for ``token``, or None (also when its user is inactive)."""
    return _live(token)


@operation
def update_web_session(s: Session, token: str, **fields: Any) -> WebSession | None:
    """Change expires_at, ip_net or user_agent of a live session; None if none."""
    allowed = {"expires_at", "ip_net", "user_agent"}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValidationError(
            f"web session has no updatable field {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(allowed))}."
        )
    changes: dict[str, Any] = {}
    if fields.get("expires_at") is not None:
        changes["expires_at"] = check_datetime("expires_at", fields["expires_at"])
    if fields.get("ip_net") is not None:
        changes["ip_net"] = _ip_net(fields["ip_net"])
    if fields.get("user_agent") is not None:
        changes["user_agent"] = check_text(
            "user_agent", fields["user_agent"], allow_empty=True, max_length=2048
        )
    row = _live(token)
    if row is None:
        return None
    if "expires_at" in changes:
        _check_window(row.issued_at, changes["expires_at"])
    changes["updated_at"] = utcnow()
    return update_row(row, changes)


@operation
def delete_web_session(s: Session, token: str) -> bool:
    """Forget the session for ``token`` (expired or not); True if there was one."""
    query = WebSession.delete().where(WebSession.token_hash == _token_hash(token))
    return bool(query.execute())


@operation
def purge_expired_web_sessions(s: Session) -> int:
    """Delete every expired session; returns how many went."""
    return int(WebSession.delete().where(WebSession.expires_at <= utcnow()).execute())
