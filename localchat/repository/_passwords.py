"""Password hashing with scrypt, parameters and salt kept in the stored string.

    stored = hash_password("correct horse")     # 'scrypt$n=32768,r=8,p=3$<salt>$<key>'
    verify_password("correct horse", stored)    # True
    password_needs_rehash(stored)               # False until SCRYPT_PARAMS is raised

Why scrypt and not argon2: ``hashlib.scrypt`` ships with Python (OpenSSL), so
localchat needs no compiled dependency, and scrypt is memory-hard and on the
OWASP Password Storage list. The default cost (N=2**15, r=8, p=3: 32 MiB, about
0.35 s on a laptop core) is one of OWASP's equivalent scrypt settings; it uses a
quarter of the memory of N=2**17, p=1, which suits a desktop app. Because the
parameters and the salt are part of each stored string, the cost can be raised
later: old hashes still verify, and ``password_needs_rehash`` tells a login to
store a fresh hash (``authenticate`` does so). A future algorithm gets its own
prefix next to ``scrypt$``.

Tests of code that hashes many passwords may lower the module attribute
``SCRYPT_PARAMS`` (e.g. to ``(2**10, 8, 1)``) with ``monkeypatch``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from ..errors import ValidationError
from ..operations import off_loop

__all__ = [
    "SCRYPT_PARAMS",
    "hash_password",
    "verify_password",
    "password_needs_rehash",
    "is_password_hash",
]

#: (N, r, p) for new hashes. Raise it as hardware gets faster.
SCRYPT_PARAMS: tuple[int, int, int] = (2**15, 8, 3)

_PREFIX = "scrypt"
_SALT_BYTES = 16
_KEY_BYTES = 32
# Refuse absurd parameters read from a stored string (they would exhaust memory).
_MAX_N, _MAX_R, _MAX_P = 2**20, 32, 64


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


# hashlib.scrypt refuses a maxmem above C's INT_MAX with ValueError.
_MAX_MEM = 2**31 - 1


def _maxmem(n: int, r: int, p: int) -> int:
    """The memory bound :func:`_derive` gives scrypt for these parameters."""
    return 2 * 128 * n * r + 128 * r * p + (1 << 20)


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return off_loop(  # a quarter of a second: an asyncio session's loop runs on meanwhile
        hashlib.scrypt,
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=_maxmem(n, r, p),
        dklen=_KEY_BYTES,
    )


def _check_password(password: object) -> str:
    if not isinstance(password, str):
        raise ValidationError(f"password must be a string, got {type(password).__name__}.")
    if not password:
        raise ValidationError("password must not be empty.")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            "password contains a lone surrogate; only valid Unicode text can be hashed."
        ) from None
    return password


def hash_password(password: str) -> str:
    """A self-describing scrypt hash of ``password`` with a fresh random salt."""
    password = _check_password(password)
    n, r, p = SCRYPT_PARAMS
    salt = os.urandom(_SALT_BYTES)
    key = _derive(password, salt, n, r, p)
    return f"{_PREFIX}$n={n},r={r},p={p}${_b64(salt)}${_b64(key)}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    """(n, r, p, salt, key) of a stored hash, or None if it is not one of ours."""
    try:
        prefix, params, salt_text, key_text = stored.split("$")
        if prefix != _PREFIX:
            return None
        values = dict(item.split("=", 1) for item in params.split(","))
        n, r, p = int(values["n"]), int(values["r"]), int(values["p"])
        salt, key = _unb64(salt_text), _unb64(key_text)
    except (ValueError, KeyError, binascii.Error):
        return None
    if not (1 < n <= _MAX_N and n & (n - 1) == 0 and 0 < r <= _MAX_R and 0 < p <= _MAX_P):
        return None
    if _maxmem(n, r, p) > _MAX_MEM:  # scrypt itself would refuse them
        return None
    if not salt or not key:
        return None
    return n, r, p, salt, key


def is_password_hash(value: object) -> bool:
    """Whether ``value`` has the form of a hash made by :func:`hash_password`.

    (Any scrypt parameters it could have been made with, a salt and a key; a
    plain password, another library's hash or a damaged string: False.)
    """
    return isinstance(value, str) and _parse(value) is not None


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``; False for a malformed or empty hash
    (parameters scrypt cannot run with included).

    The comparison is constant-time (``hmac.compare_digest``).
    """
    _check_password(password)
    parsed = _parse(stored) if isinstance(stored, str) else None
    if parsed is None:
        return False
    n, r, p, salt, key = parsed
    try:
        derived = _derive(password, salt, n, r, p)
    except ValueError:  # parameters OpenSSL refuses (e.g. its memory limit): not a hash we made
        return False
    return hmac.compare_digest(derived, key)


def password_needs_rehash(stored: str | None) -> bool:
    """Whether ``stored`` was made with other parameters than ``SCRYPT_PARAMS``."""
    parsed = _parse(stored) if isinstance(stored, str) else None
    return parsed is None or parsed[:3] != tuple(SCRYPT_PARAMS)


_dummy_hashes: dict[tuple[int, int, int], str] = {}


def burn_verify(password: str) -> None:
    """Spend the time of one verification, so unknown logins answer as slowly."""
    dummy = _dummy_hashes.get(SCRYPT_PARAMS)
    if dummy is None:
        dummy = _dummy_hashes[SCRYPT_PARAMS] = hash_password("localchat-timing-equaliser")
    verify_password(password, dummy)
