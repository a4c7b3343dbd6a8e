"""pgaudit on the local stack's real PostgreSQL: SQL typed as the superuser or the schema
owner (the roles people use) lands in the server's log with who, from where, what and which
table, never a bound parameter; a component's role is not audited (the clinic writes its own
audit rows, and the sink's inserts would drown the log)."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.integration.conftest import RunningStack
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


async def _query(url: str, statement: str, *params: object) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(statement.encode(), params or None)


def _lines(log: Path, marker: str) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines() if marker in line]


async def test_sql_typed_by_an_operator_is_in_the_server_log_without_its_parameters(
    running_stack: RunningStack,
) -> None:
    log = running_stack.state_dir / "postgres.log"
    marker = f"op-{uuid.uuid4().hex}"
    secret = f"nir-{uuid.uuid4().hex}"  # a bound parameter, as an identifier would be
    superuser = running_stack.env["VEILLE_BACKUP_DATABASE_URL"]
    lookup = f"SELECT count(*) FROM patient_identities WHERE family_name = %s /* {marker} */"
    await _query(running_stack.dsn, lookup.replace(marker, f"{marker}-owner"), secret)
    await _query(superuser, lookup.replace(marker, f"{marker}-superuser"), secret)
    await _query(running_stack.component_dsn("sink"), f"SELECT 1 /* {marker}-sink */")

    async def seen() -> list[str]:
        return _lines(log, marker)

    lines = await eventually(
        seen, lambda found: len(found) >= 2, timeout_s=10, what="pgaudit lines in postgres.log"
    )
    for who, role in (("owner", "veille"), ("superuser", "postgres")):
        mine = [line for line in lines if f"{marker}-{who}" in line]
        assert mine, lines
        assert all("AUDIT: SESSION" in line for line in mine), mine
        assert any(
            f"{role}@veille 127.0.0.1" in line
            and ",READ,SELECT,TABLE,public.patient_identities," in line
            for line in mine
        ), mine
    assert not [line for line in lines if f"{marker}-sink" in line]
    assert secret not in log.read_text(errors="replace")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600  # what operators typed: owner only
