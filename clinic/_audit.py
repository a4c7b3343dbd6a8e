"""The clinic's side of the audit trail: each request that reads patient data or acts on an
alert appends one row naming the clinician, what they did, which patient, and their address.

Routes take :data:`Audited` and call :meth:`AuditTrail.record` last, after their reads: the
row goes into the request's own transaction (the one :data:`CareDb` opened), so a request
that fails records nothing and one that succeeds cannot skip its row; and the chain's lock
(:mod:`store._audit`) is held only from that insert to the commit. The address is the TCP
peer's: uvicorn runs with ``proxy_headers=False``, so ``X-Forwarded-For`` is never trusted
(behind a reverse proxy every row names the proxy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg.rows import TupleRow

from store import AuditEntry, record_audit

from ._context import CareDb, CurrentCaller
from ._scope import Caller

__all__ = ["Audited", "AuditTrail", "client_address"]

UNKNOWN_ADDRESS = "unknown"  # an ASGI server that reports no peer (tests' in-process clients)


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else UNKNOWN_ADDRESS


@dataclass(frozen=True, slots=True)
class AuditTrail:
    conn: psycopg.AsyncConnection[TupleRow]
    caller: Caller
    source: str

    async def record(
        self,
        action: str,
        *,
        patient: str | None = None,
        care_unit: str | None = None,
        **detail: object,
    ) -> None:
        """One row: ``action`` (``patient.vitals``, ``alert.acknowledge``...) by the caller,
        about ``patient`` if the request is about one; ``detail`` holds small values (ids,
        parameters, the pseudonyms a list showed), never clinical values."""
        await record_audit(
            self.conn,
            AuditEntry(
                actor=self.caller.username, actor_role=self.caller.role.value, action=action,
                source=self.source, patient=patient, tenant=self.caller.scope.tenant,
                care_unit=care_unit, detail=detail,
            ),
        )  # fmt: skip


async def _trail(caller: CurrentCaller, conn: CareDb, request: Request) -> AuditTrail:
    return AuditTrail(conn, caller, client_address(request))


Audited = Annotated[AuditTrail, Depends(_trail)]
