"""The clinic's errors: one JSON shape, ``{"error": {"code": ..., "message": ...}}``.

::

    ApiError                  any refusal the API means, with its status and code
    +-- NotFound              404, also for what exists outside the caller's care units
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import psycopg
import psycopg_pool
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from veille.errors import VeilleError

__all__ = ["ApiError", "NotFound", "install_error_handlers"]

log = logging.getLogger(__name__)


class ApiError(VeilleError):
    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


class NotFound(ApiError):
    def __init__(self, what: str) -> None:
        super().__init__(404, "not_found", f"{what} not found in your care units")


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def _where(loc: tuple[object, ...]) -> str:
    return ".".join(str(part) for part in loc if part != "body") or "request"


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [f"{_where(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]
    return error_response(422, "invalid_request", "; ".join(problems))


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


async def _database(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable for %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        503, "database_unavailable", "the database is unreachable; try again in a moment",
        {"Retry-After": "5"},
    )  # fmt: skip


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "unexpected server error; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(psycopg.OperationalError, _database)
    app.add_exception_handler(psycopg_pool.PoolTimeout, _database)
    app.add_exception_handler(Exception, _unexpected)
