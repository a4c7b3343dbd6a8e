"""What every request may need (pool, publisher, throttles, OIDC), who is calling, and the
connection scoped to them (:data:`CareDb`) that every read of patient data goes through.

One :class:`ClinicContext` per app, built by :func:`clinic.create_app` and kept in
``app.state``: no module-level state, two apps in one process do not share anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from store import enter_care_context
from veille.settings import Settings

from ._auth import LoginThrottle
from ._errors import ApiError
from ._oidc import OidcVerifier, TokenRejected
from ._publisher import AlertPublisher
from ._scope import Caller
from ._sessions import caller_by_username, caller_for_token

__all__ = ["SESSION_COOKIE", "CareDb", "ClinicContext", "CurrentCaller", "Db", "context"]

SESSION_COOKIE = "veille_session"
ACCOUNT_FAILURES = 5  # per account in THROTTLE_WINDOW_S: password guessing stops here
CLIENT_FAILURES = 30  # per address: a ward's shared workstation has many users
THROTTLE_WINDOW_S = 300.0

_bearer = HTTPBearer(auto_error=False, description="a session token, or an OIDC JWT")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="set at login")


@dataclass(slots=True)
class ClinicContext:
    settings: Settings
    pool: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]]
    publisher: AlertPublisher
    oidc: OidcVerifier | None
    account_throttle: LoginThrottle = field(
        default_factory=lambda: LoginThrottle(ACCOUNT_FAILURES, THROTTLE_WINDOW_S)
    )
    client_throttle: LoginThrottle = field(
        default_factory=lambda: LoginThrottle(CLIENT_FAILURES, THROTTLE_WINDOW_S)
    )


def context(request: Request) -> ClinicContext:
    ctx: ClinicContext = request.app.state.clinic
    return ctx


Context = Annotated[ClinicContext, Depends(context)]


async def _connection(ctx: Context) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
    async with ctx.pool.connection() as conn:
        yield conn


Db = Annotated[psycopg.AsyncConnection[TupleRow], Depends(_connection)]


def _unauthenticated(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


async def _caller(
    ctx: Context,
    conn: Db,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> Caller:
    token = bearer.credentials if bearer is not None else cookie
    if not token:
        raise _unauthenticated(
            "unauthenticated",
            "sign in first: POST /api/v1/session, then send its cookie or "
            "'Authorization: Bearer <token>'",
        )
    if ctx.oidc is not None and token.count(".") == 2:  # a JWT; session tokens have no dot
        try:
            username = ctx.oidc.username(token)
        except TokenRejected as exc:
            raise _unauthenticated("invalid_token", str(exc)) from exc
        caller = await caller_by_username(conn, ctx.oidc.tenant, username)
        if caller is None:
            raise _unauthenticated(
                "unknown_account",
                f"no enabled Veille account {username!r} in {ctx.oidc.tenant!r}; an "
                "administrator creates it with `veille users add`",
            )
        return caller
    caller = await caller_for_token(conn, token)
    if caller is None:
        raise _unauthenticated(
            "session_invalid", "the session expired or was closed; sign in again"
        )
    return caller


CurrentCaller = Annotated[Caller, Depends(_caller)]


async def _care_connection(
    caller: CurrentCaller, conn: Db
) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
    """The request's connection inside a transaction scoped to the caller's establishment and
    care units: row-level security returns their rows only, whatever the SQL asks for. The
    scope ends with the transaction, before the connection goes back to the pool."""
    async with conn.transaction():
        await enter_care_context(
            conn, tenant=caller.scope.tenant, care_units=caller.scope.care_units
        )
        yield conn


CareDb = Annotated[psycopg.AsyncConnection[TupleRow], Depends(_care_connection)]
