"""``python -m tests.faults --runs 5``: every fault scenario, full durations, table and
docs/RELIABILITY.md. Exit status 1 when any run lost or duplicated a reading."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import signal
import sys
import tempfile
from pathlib import Path

from tests.faults.harness.report import (
    ScenarioRows,
    markdown_table,
    per_run_lines,
    write_reliability,
)
from tests.faults.harness.scenarios import FULL, SCENARIOS, SHORT, run_scenario

DOC = Path(__file__).resolve().parents[2] / "docs" / "RELIABILITY.md"


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per scenario (default 5)")
    parser.add_argument("--short", action="store_true", help="the short stalls of make test")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS),
                        help="only this scenario (repeatable)")  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="do not rewrite RELIABILITY.md")
    parser.add_argument("--keep-failed", type=Path, metavar="DIR",
                        help="copy a failed run's logs and loss trace under DIR")  # fmt: skip
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> list[ScenarioRows]:
    profile = SHORT if args.short else FULL
    rows = []
    for name in args.scenario or list(SCENARIOS):
        row = ScenarioRows(name, [])
        for run in range(1, args.runs + 1):
            with tempfile.TemporaryDirectory(prefix=f"veille-fault-{name}-") as tmp:
                try:
                    result = await run_scenario(
                        SCENARIOS[name], profile, Path(tmp), keep_failed=args.keep_failed
                    )
                except Exception as exc:
                    print(f"{name} #{run}: the run itself failed: {exc!r}", flush=True)
                    raise
            row.runs.append(result)
            print(per_run_lines([ScenarioRows(name, [result])])[0].replace(" #1", f" #{run}"),
                  flush=True)  # fmt: skip
        rows.append(row)
    return rows


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    # SIGTERM as Ctrl-C: asyncio cancels the run, whose bench then stops its stack by PID.
    signal.signal(signal.SIGTERM, _interrupt)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    rows = asyncio.run(_main(args))
    print()
    print(markdown_table(rows))
    if not args.no_write:
        command = ".venv/bin/python -m tests.faults " + shlex.join(sys.argv[1:])
        write_reliability(DOC, rows, SHORT if args.short else FULL, command.strip())
        print(f"\nwritten: {DOC}")
    return 0 if all(r.passed for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
