"""Signing in and out, and who am I."""

from __future__ import annotations

import asyncio
import math

from fastapi import APIRouter, Request, Response

from store import find_clinician

from ._auth import verify_password
from ._context import SESSION_COOKIE, Context, CurrentCaller, Db
from ._errors import ApiError
from ._models import INVALID_INPUT, ErrorResponse, LoginRequest, Me, SessionOut
from ._scope import Caller, CareScope
from ._sessions import open_session, revoke_session

__all__ = ["router"]

router = APIRouter(tags=["session"])


def _me(caller: Caller) -> Me:
    return Me(
        username=caller.username, display_name=caller.display_name, role=caller.role,
        tenant=caller.scope.tenant, care_units=list(caller.scope.care_units),
    )  # fmt: skip


@router.post(
    "/session",
    status_code=201,
    summary="Sign in with a username and password",
    responses={
        401: {"model": ErrorResponse, "description": "unknown user or wrong password"},
        403: {"model": ErrorResponse, "description": "the account is disabled"},
        429: {"model": ErrorResponse, "description": "too many failed attempts; see Retry-After"},
        **INVALID_INPUT,
    },
)
async def login(
    body: LoginRequest, request: Request, response: Response, ctx: Context, conn: Db
) -> SessionOut:
    """Opens a session: its token comes back in the body and as an HttpOnly, SameSite=Strict
    cookie. Failed attempts are throttled per account and per client address."""
    account_key = f"{body.tenant}/{body.username}"
    client_key = request.client.host if request.client else "unknown"
    wait = max(
        ctx.account_throttle.retry_after(account_key), ctx.client_throttle.retry_after(client_key)
    )
    if wait > 0:
        seconds = math.ceil(wait)
        raise ApiError(
            429, "too_many_attempts", f"too many failed sign-ins; try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )  # fmt: skip
    account = await find_clinician(conn, tenant=body.tenant, username=body.username)
    # argon2 spends ~50 ms of CPU on purpose: off the event loop.
    matches = await asyncio.to_thread(
        verify_password, account.password_hash if account else None, body.password
    )
    if account is None or not matches:
        ctx.account_throttle.failed(account_key)
        ctx.client_throttle.failed(client_key)
        raise ApiError(401, "invalid_credentials", "unknown user or wrong password")
    if account.disabled_at is not None:
        raise ApiError(
            403, "account_disabled",
            f"this account was disabled on {account.disabled_at:%Y-%m-%d}; ask an administrator",
        )  # fmt: skip
    ctx.account_throttle.succeeded(account_key)
    token, expires_at = await open_session(conn, account.id, ctx.settings.clinic_session_s)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=ctx.settings.clinic_session_s, path="/",
        httponly=True, samesite="strict", secure=ctx.settings.clinic_cookie_secure,
    )  # fmt: skip
    caller = Caller(
        account.id, account.username, account.display_name, account.role,
        CareScope(account.tenant, account.care_units),
    )  # fmt: skip
    return SessionOut(token=token, expires_at=expires_at, clinician=_me(caller))


@router.delete(
    "/session",
    status_code=204,
    summary="Sign out: the session's token stops working at once",
    responses={401: {"model": ErrorResponse}},
)
async def logout(caller: CurrentCaller, conn: Db, ctx: Context) -> Response:
    if caller.session_digest is not None:
        await revoke_session(conn, caller.session_digest)
    response = Response(status_code=204)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict",
        secure=ctx.settings.clinic_cookie_secure,
    )  # fmt: skip
    return response


@router.get("/me", summary="The signed-in clinician", responses={401: {"model": ErrorResponse}})
async def me(caller: CurrentCaller) -> Me:
    return _me(caller)
