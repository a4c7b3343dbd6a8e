"""Database write throughput: ``BatchWriter`` COPY against UNNEST on the partitioned table.

Writes go through the sink's own path (a new ``BatchWriter`` per batch on an autocommit
connection, one transaction per batch) into the real ``readings`` table with its natural-key
index. The duplicate case writes the same batch again: every row hits ``ON CONFLICT``, which
is what a replay after a sink crash costs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.rows import TupleRow

from devices import CATALOGUE
from store import BatchWriter, ReadingRow, WriteMethod, recorded_flavour

from ._stats import median

__all__ = ["WriteCase", "WriteResultSet", "run_write_bench"]

DEVICES_PER_BATCH = 50  # a sink batch mixes the readings of many devices and patients
_METRICS = tuple(CATALOGUE.values())


@dataclass(frozen=True, slots=True)
class WriteCase:
    method: WriteMethod
    size: int
    replay: bool
    seconds: list[float]  # one per repetition

    @property
    def rows_per_s(self) -> list[float]:
        return [self.size / s for s in self.seconds]


@dataclass(frozen=True, slots=True)
class WriteResultSet:
    cases: list[WriteCase]
    repetitions: int
    server: str  # version, schema flavour and durability settings, for the report

    def case(self, method: WriteMethod, size: int, replay: bool) -> WriteCase:
        return next(c for c in self.cases if (c.method, c.size, c.replay) == (method, size, replay))

    def unnest_over_copy(self, size: int) -> float:
        """Median over repetitions of UNNEST time / COPY time for fresh rows (same repetition)."""
        copy_ = self.case(WriteMethod.COPY, size, False).seconds
        unnest = self.case(WriteMethod.UNNEST, size, False).seconds
        return median([u / c for c, u in zip(copy_, unnest, strict=True)])


def _rows(tag: str, size: int) -> list[ReadingRow]:
    now = datetime.now(UTC)
    start = now - timedelta(minutes=10)
    rows: list[ReadingRow] = []
    for i in range(size):
        m = _METRICS[i % len(_METRICS)]
        device = i % DEVICES_PER_BATCH
        value = round((m.plausible_min + m.plausible_max) / 2 + i % 7, m.decimals)
        rows.append(
            (start + timedelta(milliseconds=i), "chu-bench", "cardiology", f"p-bench-{device:03d}",
             f"bench-db-{tag}-{device:03d}", m.name, float(value), m.unit, i, now)
        )  # fmt: skip
    return rows


async def _timed_write(
    conn: psycopg.AsyncConnection[TupleRow],
    method: WriteMethod,
    rows: list[ReadingRow],
    expect_inserted: int,
) -> float:
    started = time.perf_counter()
    result = await BatchWriter(conn, method).write(rows)
    elapsed = time.perf_counter() - started
    if result.readings_inserted != expect_inserted:
        raise RuntimeError(
            f"{method} wrote {result.readings_inserted} of {len(rows)} rows, "
            f"expected {expect_inserted}"
        )
    return elapsed


async def run_write_bench(
    dsn: str, *, sizes: tuple[int, ...], repetitions: int, progress: Callable[[str], None]
) -> WriteResultSet:
    """Interleave methods and sizes in every repetition; repetition 0 is a warm-up."""
    methods = (WriteMethod.COPY, WriteMethod.UNNEST)
    seconds: dict[tuple[WriteMethod, int, bool], list[float]] = {
        (m, s, r): [] for m in methods for s in sizes for r in (False, True)
    }
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        server = await _describe_server(conn)
        for rep in range(repetitions + 1):
            for size in sizes:
                for method in methods:
                    rows = _rows(f"{method}-{size}-{rep}", size)
                    fresh = await _timed_write(conn, method, rows, size)
                    replay = await _timed_write(conn, method, rows, 0)
                    if rep:
                        seconds[(method, size, False)].append(fresh)
                        seconds[(method, size, True)].append(replay)
            if rep:
                progress(f"db: repetition {rep}/{repetitions} done")
        # Leave an empty table to the end-to-end runs that follow on the same database.
        await conn.execute("DELETE FROM readings WHERE device_id LIKE 'bench-db-%'")
    cases = [WriteCase(m, s, r, v) for (m, s, r), v in seconds.items()]
    return WriteResultSet(cases, repetitions, server)


async def _describe_server(conn: psycopg.AsyncConnection[TupleRow]) -> str:
    version = conn.info.parameter_status("server_version") or "?"
    flavour = await recorded_flavour(conn)
    settings = []
    for name in ("fsync", "synchronous_commit", "shared_buffers"):
        cur = await conn.execute(f"SHOW {name}")
        row = await cur.fetchone()
        settings.append(f"{name}={row[0] if row else '?'}")
    return f"{version} ({flavour.value if flavour else '?'} schema; {', '.join(settings)})"
