"""store._audit_chain: the audit rows' canonical form and the chain verifier (no database)."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta

from store import AuditRow, ChainVerifier, audit_row_hash, canonical_audit_row
from store._audit_chain import GENESIS_HASH

AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _unhashed(ident: int, **changes: object) -> AuditRow:
    row = AuditRow(
        id=ident, at=AT + timedelta(seconds=ident), db_user="veille_clinic", actor="nurse-a",
        actor_role="nurse", action="patient.vitals", patient="p-1", tenant="chu",
        care_unit=None, source="10.0.0.7", detail='{"care_units": ["icu"]}',
        prev_hash=b"", row_hash=b"",
    )  # fmt: skip
    return dataclasses.replace(row, **changes)  # type: ignore[arg-type]


def chain(n: int) -> list[AuditRow]:
    rows, prev = [], GENESIS_HASH
    for ident in range(1, n + 1):
        row = dataclasses.replace(_unhashed(ident), prev_hash=prev)
        row = dataclasses.replace(row, row_hash=audit_row_hash(prev, row))
        rows.append(row)
        prev = row.row_hash
    return rows


def verify(rows: list[AuditRow], head: tuple[int, bytes] | None = None):  # type: ignore[no-untyped-def]
    verifier = ChainVerifier()
    for row in rows:
        verifier.feed(row)
    last = rows[-1] if rows else None
    head = head or ((last.id, last.row_hash) if last else (0, GENESIS_HASH))
    return verifier.finish(*head)


def test_the_canonical_form_is_length_prefixed_fields_with_null_as_dash() -> None:
    row = _unhashed(7, at=AT, detail="{}", patient="p-é")
    at_us = 1767323045678901
    assert canonical_audit_row(row) == (
        f"veille-audit-v1" f"1:7" f"16:{at_us}" "13:veille_clinic" "7:nurse-a" "5:nurse"
        "14:patient.vitals" "4:p-é" "3:chu" "-" "8:10.0.0.7" "2:{}"
    ).encode()  # fmt: skip
    assert int((AT - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) == at_us // 1_000_000


def test_the_hash_is_sha256_of_the_previous_hash_then_the_canonical_form() -> None:
    row = _unhashed(1)
    assert (
        audit_row_hash(GENESIS_HASH, row)
        == hashlib.sha256(bytes(32) + canonical_audit_row(row)).digest()
    )


def test_no_value_can_move_a_field_boundary() -> None:
    """'a' + 'b|c' and 'a|b' + 'c' differ: each field carries its byte length."""
    one = _unhashed(1, actor="ab", actor_role="c")
    two = _unhashed(1, actor="a", actor_role="bc")
    assert canonical_audit_row(one) != canonical_audit_row(two)
    assert canonical_audit_row(_unhashed(1, care_unit=None)) != canonical_audit_row(
        _unhashed(1, care_unit="-")
    )
    assert canonical_audit_row(_unhashed(1, care_unit="")) != canonical_audit_row(
        _unhashed(1, care_unit=None)
    )


def test_an_intact_chain_holds() -> None:
    report = verify(chain(5))
    assert report.holds and report.count == 5 and report.last_id == 5
    assert verify([]).holds


def test_an_altered_row_is_named() -> None:
    rows = chain(5)
    rows[2] = dataclasses.replace(rows[2], actor="someone-else")
    report = verify(rows, (5, chain(5)[-1].row_hash))
    assert not report.holds and report.bad_id == 3 and report.count == 2
    assert "altered" in (report.reason or "")


def test_a_row_rehashed_after_alteration_breaks_the_next_link() -> None:
    rows = chain(5)
    forged = dataclasses.replace(rows[1], patient="p-other")
    rows[1] = dataclasses.replace(forged, row_hash=audit_row_hash(forged.prev_hash, forged))
    report = verify(rows, (5, rows[-1].row_hash))
    assert report.bad_id == 3 and "prev_hash" in (report.reason or "")


def test_a_deleted_row_is_a_gap() -> None:
    rows = chain(5)
    del rows[1]
    report = verify(rows)
    assert report.bad_id == 2 and "missing" in (report.reason or "")


def test_rows_removed_from_the_end_disagree_with_the_head() -> None:
    rows = chain(5)
    report = verify(rows[:3], (5, rows[-1].row_hash))
    assert report.bad_id == 4 and "head" in (report.reason or "")


def test_the_at_field_counts_microseconds() -> None:
    rows = chain(2)
    rows[0] = dataclasses.replace(rows[0], at=rows[0].at + timedelta(microseconds=1))
    assert verify(rows).bad_id == 1


def test_an_anchor_recorded_earlier_catches_a_consistently_rewritten_chain() -> None:
    original = chain(4)
    rewritten, prev = [], GENESIS_HASH
    for row in original:  # someone rewrites row 2 and recomputes every hash after it
        changed = dataclasses.replace(row, prev_hash=prev)
        if row.id == 2:
            changed = dataclasses.replace(changed, actor="nobody")
        changed = dataclasses.replace(changed, row_hash=audit_row_hash(prev, changed))
        rewritten.append(changed)
        prev = changed.row_hash
    assert verify(rewritten).holds  # a chain alone cannot tell
    verifier = ChainVerifier({3: original[2].row_hash})
    for row in rewritten:
        verifier.feed(row)
    report = verifier.finish(4, rewritten[-1].row_hash)
    assert report.bad_id == 3 and "recorded earlier" in (report.reason or "")


def test_an_anchor_beyond_the_table_means_rows_were_removed() -> None:
    rows = chain(3)
    verifier = ChainVerifier({5: bytes(32)})
    for row in rows:
        verifier.feed(row)
    report = verifier.finish(3, rows[-1].row_hash)
    assert report.bad_id == 5 and not report.holds
