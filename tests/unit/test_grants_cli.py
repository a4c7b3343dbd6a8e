"""``veille grants``: how long a grant lasts, as the operator writes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from veille.cli import build_parser
from veille.cli._times import parse_duration
from veille.cli._times import parse_time as parse_until
from veille.errors import ConfigurationError


@pytest.mark.parametrize(
    ("text", "expected"),
    [("72h", timedelta(hours=72)), ("30m", timedelta(minutes=30)), ("7d", timedelta(days=7)),
     ("1.5h", timedelta(minutes=90)), ("2s", timedelta(seconds=2))],
)  # fmt: skip
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["72", "h", "3 weeks", "-1h", ""])
def test_a_bad_duration_says_how_to_write_one(text: str) -> None:
    with pytest.raises(ConfigurationError, match="72h"):
        parse_duration(text)


def test_until_needs_an_offset() -> None:
    assert parse_until("2026-12-10T12:00Z") == datetime(2026, 12, 10, 12, tzinfo=UTC)
    with pytest.raises(ConfigurationError, match="offset"):
        parse_until("2026-12-10T12:00")


def test_a_grant_needs_a_reason_on_the_command_line() -> None:
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["grants", "add", "--patient", "p", "--to-tenant", "t", "--to-unit", "u"])
    args = parser.parse_args(
        ["grants", "add", "--patient", "p", "--to-tenant", "t", "--to-unit", "u", "--reason",
         "transfer", "--for", "72h"]
    )  # fmt: skip
    assert (args.reason, args.duration, args.by) == ("transfer", "72h", None)
