"""NEWS2 as the clinic's board shows it, read through the clinic API with the demo login.

The panel counts the ward's patients per risk band from the same ``/news2`` route the board
calls, so what the terminal says is what a nurse sees on the page.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

import httpx

__all__ = ["BOARD_EVERY_S", "INCOMPLETE", "WardNews2", "watch_board"]

BOARD_EVERY_S: Final = 3.0
PATIENTS_PER_REQUEST: Final = 200  # the route's limit (a board's worth)
INCOMPLETE: Final = "incomplete"  # a parameter has no fresh value: the board shows no score
_BAND_ORDER: Final = ("low", "low-medium", "medium", "high", INCOMPLETE)


@dataclass(slots=True)
class WardNews2:
    """Patients per NEWS2 band (or incomplete); empty until the first answer."""

    bands: Counter[str] = field(default_factory=Counter)

    def describe(self) -> str:
        if not self.bands:
            return "-"
        return ", ".join(f"{b} {self.bands[b]}" for b in _BAND_ORDER if self.bands[b])


async def _bands(client: httpx.AsyncClient, patients: list[str]) -> Counter[str]:
    bands: Counter[str] = Counter()
    for i in range(0, len(patients), PATIENTS_PER_REQUEST):
        chunk = patients[i : i + PATIENTS_PER_REQUEST]
        r = await client.get("/api/v1/news2", params={"patient": chunk})
        r.raise_for_status()
        bands.update(s["band"] or INCOMPLETE for s in r.json()["scores"])
    return bands


async def watch_board(
    base_url: str,
    login: dict[str, str],
    patients: list[str],
    ward: WardNews2,
    stop: asyncio.Event,
) -> None:
    """Sign in as the demo nurse, then refresh ``ward`` until ``stop``; a failed request
    leaves the last counts (the panel is a view, never a reason to stop the demo)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        while not stop.is_set():
            try:
                if not client.cookies:
                    (await client.post("/api/v1/session", json=login)).raise_for_status()
                ward.bands = await _bands(client, patients)
            except (httpx.HTTPError, KeyError, ValueError):  # unreachable, or not the board's
                client.cookies.clear()
            try:
                await asyncio.wait_for(stop.wait(), BOARD_EVERY_S)
            except TimeoutError:
                pass
