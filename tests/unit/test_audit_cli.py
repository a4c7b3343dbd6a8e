"""``veille audit``'s argument parsing and the operator's audit rows (no database)."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime, timedelta

import pytest

from veille._operator import operator_entry
from veille.cli import build_parser
from veille.cli.audit import parse_anchor, parse_since
from veille.errors import ConfigurationError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", NOW - timedelta(minutes=90)),
        ("12h", NOW - timedelta(hours=12)),
        ("7d", NOW - timedelta(days=7)),
        ("2026-02-28T08:00Z", datetime(2026, 2, 28, 8, tzinfo=UTC)),
        ("2026-02-28T08:00", datetime(2026, 2, 28, 8, tzinfo=UTC)),
        (None, None),
    ],
)
def test_since_is_an_age_or_a_time(text: str | None, expected: datetime | None) -> None:
    assert parse_since(text, NOW) == expected


def test_a_bad_since_says_what_to_give() -> None:
    with pytest.raises(ConfigurationError, match="ISO time"):
        parse_since("yesterday", NOW)


def test_an_anchor_is_a_row_and_a_sha256() -> None:
    assert parse_anchor(f"12:{'ab' * 32}") == (12, bytes.fromhex("ab" * 32))
    for bad in ("12", f"x:{'ab' * 32}", "12:abcd", f"0:{'ab' * 32}"):
        with pytest.raises(ConfigurationError, match="ROW:SHA256"):
            parse_anchor(bad)


def test_the_commands_parse() -> None:
    args = build_parser().parse_args(
        ["audit", "list", "--patient", "p-1", "--actor", "nurse-a", "--since", "1h"]
    )
    assert (args.patient, args.actor, args.since, args.limit) == ("p-1", "nurse-a", "1h", 200)
    args = build_parser().parse_args(["audit", "verify", "--expect", "3:" + "00" * 32])
    assert args.expect == ["3:" + "00" * 32]


def test_an_operator_row_names_the_os_user_and_the_host() -> None:
    entry = operator_entry("fhir.export", patient="p-1", tenant="chu", hours=24.0)
    assert entry.actor == f"cli:{getpass.getuser()}"
    assert entry.actor_role == "operator" and entry.source.startswith("cli@")
    assert (entry.patient, entry.detail) == ("p-1", {"hours": 24.0})
