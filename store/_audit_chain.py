"""The audit trail's hash chain, on the Python side: the canonical form of a row and the
verifier. PostgreSQL computes the same hash when it stores a row (:mod:`store._audit`).

Canonical form (version 1) of a row, as bytes::

    "veille-audit-v1" F(id) F(at_us) F(db_user) F(actor) F(actor_role) F(action)
                      F(patient_pseudonym) F(tenant) F(care_unit) F(source) F(detail)

concatenated without separators, UTF-8, where ``F(NULL)`` is ``-`` and ``F(v)`` is
``<byte length of v>:<v>`` (length-prefixed, so no value can forge a field boundary);
``id`` and ``at_us`` (``at`` in microseconds since 1970-01-01 UTC) in decimal, ``detail`` as
PostgreSQL prints the jsonb (``detail::text``). Then::

    row_hash = sha256(prev_hash || canonical)      prev_hash of the first row: 32 zero bytes

and each row's ``prev_hash`` is the previous row's ``row_hash``; ids are 1, 2, 3, ... with no
gap, and the one-row ``audit_chain_head`` holds the last id and hash, so a row removed from
the end is noticed too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "GENESIS_HASH",
    "AuditRow",
    "ChainReport",
    "ChainVerifier",
    "audit_row_hash",
    "canonical_audit_row",
]

CANONICAL_VERSION = "veille-audit-v1"
GENESIS_HASH = bytes(32)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRow:
    """One stored row of ``audit_events``; ``detail`` is its jsonb as text."""

    id: int
    at: datetime
    db_user: str
    actor: str
    actor_role: str
    action: str
    patient: str | None
    tenant: str | None
    care_unit: str | None
    source: str
    detail: str
    prev_hash: bytes
    row_hash: bytes


def _field(value: str | None) -> str:
    if value is None:
        return "-"
    return f"{len(value.encode())}:{value}"


def canonical_audit_row(row: AuditRow) -> bytes:
    """The bytes hashed after the previous row's hash (module docstring)."""
    at_us = (row.at - _EPOCH) // _MICROSECOND
    fields = (
        str(row.id), str(at_us), row.db_user, row.actor, row.actor_role, row.action,
        row.patient, row.tenant, row.care_unit, row.source, row.detail,
    )  # fmt: skip
    return (CANONICAL_VERSION + "".join(_field(f) for f in fields)).encode()


def audit_row_hash(prev_hash: bytes, row: AuditRow) -> bytes:
    return hashlib.sha256(prev_hash + canonical_audit_row(row)).digest()


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What :class:`ChainVerifier` found: ``bad_id`` and ``reason`` are None when it holds."""

    count: int
    last_id: int
    last_hash: bytes
    bad_id: int | None = None
    reason: str | None = None

    @property
    def holds(self) -> bool:
        return self.bad_id is None and self.reason is None


class ChainVerifier:
    """Feed rows in id order with :meth:`feed`, then :meth:`finish` with the chain head; the
    first break found is kept (later rows are not looked at).

    ``anchors``: row id -> the hash an earlier verification printed for it. Someone able to
    rewrite a row and every hash after it makes a chain that holds; it no longer reaches a
    hash kept outside the database.
    """

    __slots__ = ("_anchors", "_count", "_failure", "_last_hash", "_last_id")

    def __init__(self, anchors: Mapping[int, bytes] | None = None) -> None:
        self._anchors = dict(anchors or {})
        self._count = 0
        self._last_id = 0
        self._last_hash = GENESIS_HASH
        self._failure: tuple[int, str] | None = None

    @property
    def broken(self) -> bool:
        return self._failure is not None

    def feed(self, row: AuditRow) -> None:
        if self._failure is not None:
            return
        expected_id = self._last_id + 1
        if row.id != expected_id:
            missing = (
                f"{expected_id}" if row.id == expected_id + 1 else f"{expected_id}..{row.id - 1}"
            )
            self._fail(expected_id, f"row {missing} is missing (the row after {self._last_id} "
                       f"is {row.id}): deleted")  # fmt: skip
        elif row.prev_hash != self._last_hash:
            self._fail(row.id, f"its prev_hash {row.prev_hash.hex()[:16]}... is not the "
                       f"previous row's hash {self._last_hash.hex()[:16]}... (a row before "
                       "it was replaced, or its prev_hash was edited)")  # fmt: skip
        elif (computed := audit_row_hash(row.prev_hash, row)) != row.row_hash:
            self._fail(row.id, f"its content does not match its row_hash (stored "
                       f"{row.row_hash.hex()[:16]}..., computed {computed.hex()[:16]}...): "
                       "the row was altered after it was written")  # fmt: skip
        elif (anchor := self._anchors.get(row.id)) is not None and anchor != row.row_hash:
            self._fail(row.id, f"its hash {row.row_hash.hex()[:16]}... is not the "
                       f"{anchor.hex()[:16]}... recorded earlier: the trail was rewritten from "
                       "this row on, or before it")  # fmt: skip
        if self._failure is None:
            self._count += 1
            self._last_id = row.id
            self._last_hash = row.row_hash

    def _fail(self, row_id: int, reason: str) -> None:
        self._failure = (row_id, reason)

    def finish(self, head_id: int, head_hash: bytes) -> ChainReport:
        """The report, given what ``audit_chain_head`` says the last row is."""
        if self._failure is not None:
            bad_id, reason = self._failure
            return ChainReport(self._count, self._last_id, self._last_hash, bad_id, reason)
        beyond = sorted(i for i in self._anchors if i > self._last_id)
        if beyond:
            reason = (f"row {beyond[0]}, whose hash was recorded earlier, is not in the "
                      f"table (it ends at {self._last_id}): rows were removed")  # fmt: skip
            return ChainReport(self._count, self._last_id, self._last_hash, beyond[0], reason)
        if (head_id, head_hash) != (self._last_id, self._last_hash):
            reason = (f"the chain head says the last row is {head_id} "
                      f"({head_hash.hex()[:16]}...) but the table ends at {self._last_id} "
                      f"({self._last_hash.hex()[:16]}...): rows were removed from the end, "
                      "or the head was edited")  # fmt: skip
            first_bad = min(head_id, self._last_id) + 1
            return ChainReport(self._count, self._last_id, self._last_hash, first_bad, reason)
        return ChainReport(self._count, self._last_id, self._last_hash)
