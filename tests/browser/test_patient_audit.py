"""Opening a patient's page in a real headless Chromium writes exactly one audit row naming
that patient (the vitals the page draws), plus one row for each list the page also loads
(the care units' alerts, NEWS2, the live stream), which name no patient in that column."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.conftest import RunningStack
from tests.support.patients import PASSWORD, add_nurse, seed_patient
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.browser]

DEADLINE_S = 30
PAGE_ACTIONS = {"patient.vitals", "alerts.list", "patients.news2", "alerts.stream"}


async def _rows(dsn: str, actor: str) -> list[tuple[str, str | None, object]]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as owner:
        cur = await owner.execute(
            "SELECT action, patient_pseudonym, detail FROM audit_events WHERE actor = %s "
            "ORDER BY id",
            (actor,),
        )
        return await cur.fetchall()


def test_opening_a_patient_page_writes_one_row_for_that_patient(
    running_stack: RunningStack, clinic_url: str, browser: WebDriver
) -> None:
    tag = uuid.uuid4().hex[:6]
    tenant, unit, patient = f"chu-{tag}", f"icu-{tag}", f"p-{tag}"
    dsn = running_stack.dsn
    asyncio.run(seed_patient(dsn, tenant, unit, patient))
    nurse = asyncio.run(add_nurse(dsn, tenant, unit))
    wait = WebDriverWait(browser, DEADLINE_S)

    # Signed in through the API, the session cookie handed to the browser: the sign-in form
    # leads to the board, whose own reads would mix with the patient page's.
    signed_in = httpx.post(f"{clinic_url}/api/v1/session", timeout=30,
                           json={"tenant": tenant, "username": nurse, "password": PASSWORD})  # fmt: skip
    assert signed_in.status_code == 201, signed_in.text
    browser.get(f"{clinic_url}/static/veille.css")  # a page of the clinic's origin, no read
    browser.add_cookie({"name": "veille_session", "value": signed_in.json()["token"],
                        "path": "/", "httpOnly": True})  # fmt: skip
    assert asyncio.run(_rows(dsn, nurse)) == []

    browser.get(f"{clinic_url}/patients/{patient}")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, 'figure.metric[data-metric="spo2"]'))

    rows = asyncio.run(eventually(
        lambda: _rows(dsn, nurse), lambda rows: len(rows) >= len(PAGE_ACTIONS),
        what="the patient page's audit rows",
    ))  # fmt: skip
    naming = [(action, p) for action, p, _ in rows if p is not None]
    assert naming == [("patient.vitals", patient)]
    assert sorted(action for action, _, _ in rows) == sorted(PAGE_ACTIONS)
    news2 = next(detail for action, _, detail in rows if action == "patients.news2")
    assert news2 == {"patients": [patient]}
