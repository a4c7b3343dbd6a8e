"""Device credentials: generated once, shown once, stored only as a scrypt hash."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["hash_credential", "new_credential", "verify_credential"]

# scrypt cost: ~50 ms and 16 MiB per check here; devices authenticate once per connection.
_N, _R, _P = 2**14, 8, 1


def new_credential() -> str:
    return secrets.token_urlsafe(24)


def hash_credential(credential: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(credential.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    encode = base64.urlsafe_b64encode
    return f"scrypt${_N}${_R}${_P}${encode(salt).decode()}${encode(digest).decode()}"


def verify_credential(credential: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.urlsafe_b64decode(digest)
    actual = hashlib.scrypt(
        credential.encode(),
        salt=base64.urlsafe_b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        dklen=len(expected),
    )
    return hmac.compare_digest(actual, expected)
