"""Passwords, session tokens and login throttling: the clinic's secrets, none stored in clear.

Passwords are hashed with argon2id (argon2-cffi's defaults follow RFC 9106's second
recommended option). A session token is 32 random bytes handed to the client once; the
database keeps only its SHA-256, so reading the sessions table opens no session.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "LoginThrottle",
    "hash_password",
    "new_session_token",
    "password_needs_rehash",
    "token_digest",
    "verify_password",
]

_HASHER = PasswordHasher()  # stateless and immutable: safe to share
TOKEN_BYTES = 32  # 256 bits: not guessable, and SHA-256 needs no salt for such a secret
MIN_PASSWORD_LENGTH = 12  # NIST SP 800-63B asks at least 8; clinical accounts get more

# A password nobody has: login of an unknown user still spends one argon2 verification, so
# timing does not tell which usernames exist.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches; an account without a hash (OIDC only) never does."""
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)


def new_session_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(slots=True)
class LoginThrottle:
    """At most ``max_failures`` failed logins per key within ``window_s``, then wait.

    Keys are the account (tenant/username) and the client address, so neither guessing one
    account's password nor spraying many accounts from one address goes fast. In memory, per
    API process: several processes each allow as many.
    """

    max_failures: int = 5  # OWASP: lock out after a handful; 5 tolerates typing slips
    window_s: float = 300.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, *keys: str, now: float | None = None) -> float:
        """Seconds before these keys may try again; 0 when they may now."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        for key in keys:
            recent = self._recent(key, now)
            if len(recent) >= self.max_failures:
                wait = max(wait, recent[0] + self.window_s - now)
        return wait

    def failed(self, *keys: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for key in keys:
            self._recent(key, now)
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        """This key's failures within the window; forgets keys with none left."""
        recent = self._failures.get(key)
        if recent is None:
            return deque()
        while recent and recent[0] <= now - self.window_s:
            recent.popleft()
        if not recent:
            del self._failures[key]
        return recent
