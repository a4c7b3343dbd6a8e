"""Passwords, session tokens and login throttling (no database)."""

from __future__ import annotations

import pytest

from clinic import LoginThrottle, hash_password, verify_password
from clinic._auth import new_session_token, password_needs_rehash, token_digest

PASSWORD = "correct horse battery staple"


def test_passwords_are_argon2id_hashes_that_verify() -> None:
    stored = hash_password(PASSWORD)
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD + "!")
    assert not password_needs_rehash(stored)


def test_the_same_password_hashes_differently_each_time() -> None:
    assert hash_password(PASSWORD) != hash_password(PASSWORD)  # salted


def test_short_passwords_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 12 characters"):
        hash_password("short")


@pytest.mark.parametrize("stored", [None, "", "not-a-hash", "$argon2id$v=19$garbage"])
def test_accounts_without_a_usable_hash_never_sign_in(stored: str | None) -> None:
    assert not verify_password(stored, PASSWORD)


def test_session_tokens_are_random_and_stored_as_digests() -> None:
    tokens = {new_session_token() for _ in range(100)}
    assert len(tokens) == 100 and all(len(t) >= 43 and "." not in t for t in tokens)
    token = tokens.pop()
    assert token_digest(token) == token_digest(token) and len(token_digest(token)) == 32
    assert token.encode() not in token_digest(token)


def test_throttle_blocks_after_the_allowed_failures_then_forgets() -> None:
    throttle = LoginThrottle(max_failures=3, window_s=60)
    for second in range(3):
        assert throttle.retry_after("acct", now=second) == 0
        throttle.failed("acct", now=second)
    assert throttle.retry_after("acct", now=3) == pytest.approx(57)
    assert throttle.retry_after("other", now=3) == 0
    assert throttle.retry_after("acct", now=60.5) == 0  # the first failure left the window


def test_a_success_clears_the_account() -> None:
    throttle = LoginThrottle(max_failures=2, window_s=60)
    throttle.failed("acct", now=0)
    throttle.succeeded("acct")
    throttle.failed("acct", now=1)
    assert throttle.retry_after("acct", now=2) == 0
