"""The board in a real headless Chromium: sign in through the form, see an alert appear live
(no reload) after readings are published over MQTT and go through the real pipeline,
acknowledge it, resolve it with a note, see it leave the board. Screenshots go to the test's
tmp dir, and to docs/img/board.png (shown in the README) with VEILLE_UPDATE_DOCS_SCREENSHOT=1."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from clinic import hash_password
from devices import DeviceBinding, device_topic, now_us
from store import ClinicianRole, PatientAdmission, add_clinician, admit_patient, upsert_bindings
from tests.integration.conftest import RunningPipeline
from tests.support.devices import (
    TENANT,
    batch_payload,
    new_device,
    provision,
    reading,
    spo2_series,
)
from tests.support.devices import TestDevice as Bedside
from tests.support.pipeline import publish_all, scalar
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PASSWORD = "correct horse battery staple"
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "board.png"
TABLET, PHONE = (1024, 768), (390, 844)
DEADLINE_S = 60  # the pipeline's worst case here; the page itself updates within a second


def _fits_width(driver: WebDriver) -> bool:
    return bool(driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth;"))  # fmt: skip


def _row(driver: WebDriver, patient: str) -> WebElement | None:
    rows = driver.find_elements(By.CSS_SELECTOR, f'article[data-patient="{patient}"]')
    return rows[0] if rows else None


def _click(driver: WebDriver, patient: str, selector: str) -> bool:
    """Click a button of the patient's row as it is now: the board re-renders a row on every
    event (an escalation every few seconds here), so an element found earlier may be gone."""
    row = _row(driver, patient)
    if row is None:
        return False
    row.find_element(By.CSS_SELECTOR, selector).click()
    return True


def _state(driver: WebDriver, patient: str) -> str | None:
    row = _row(driver, patient)
    return row.get_attribute("data-state") if row else None


async def _setup(pipeline: RunningPipeline, unit: str) -> tuple[str, list]:
    dsn = pipeline.stack.dsn
    username = f"nurse-{uuid.uuid4().hex[:6]}"
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await add_clinician(conn, tenant=TENANT, username=username, display_name="N. Martin",
                            role=ClinicianRole.NURSE, password_hash=hash_password(PASSWORD),
                            care_units=[unit])  # fmt: skip
    monitors = [dataclasses.replace(new_device(f"bed{i}"), care_unit=unit) for i in (1, 2)]
    await provision(dsn, *monitors)
    # The nurses' observation app records what no sensor measures (ACVPU, oxygen) for the
    # first patient: with the monitor's vitals, a complete NEWS2.
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        binding = DeviceBinding(
            f"app-{unit}", TENANT, unit, monitors[0].patient, now_us() - 3_600_000_000
        )
        await upsert_bindings(conn, [(binding, "observation_app")])
        # The first patient is admitted: the board names them; the second shows the pseudonym.
        admission = PatientAdmission(
            pseudonym=monitors[0].patient, tenant=TENANT, care_unit=unit, family_name="Durand",
            given_names="Paul", birth_date=date(1941, 7, 2), bed="7A",
        )  # fmt: skip
        await admit_patient(conn, admission, at=datetime.now(UTC))
    return username, monitors


def _news2_messages(first: Bedside, start: datetime) -> list[tuple[str, bytes, int]]:
    at = start + timedelta(seconds=10)
    vitals = [reading(50, "respiration_rate", 22, "/min", at), reading(51, "systolic_bp", 128, "mm[Hg]", at),
              reading(52, "diastolic_bp", 82, "mm[Hg]", at), reading(53, "heart_rate", 115, "/min", at),
              reading(54, "body_temperature", 38.2, "Cel", at)]  # fmt: skip
    app_id = f"app-{first.care_unit}"
    observed = [
        reading(1, "consciousness", 0, "{ACVPU}", at),
        reading(2, "inhaled_oxygen_flow", 0, "L/min", at),
    ]
    return [
        (first.topic, batch_payload(first, vitals), len(vitals)),
        (
            device_topic(TENANT, app_id),
            orjson.dumps({"v": 1, "device_id": app_id, "readings": observed}),
            2,
        ),
    ]


def test_alert_appears_live_then_is_acknowledged_and_resolved(
    pipeline: RunningPipeline, clinic_url: str, browser: WebDriver, tmp_path: Path
) -> None:
    unit = f"ward-{uuid.uuid4().hex[:6]}"
    username, (first, second) = asyncio.run(_setup(pipeline, unit))
    # A row re-rendered between finding it and reading it is stale: look again.
    wait = WebDriverWait(browser, DEADLINE_S, ignored_exceptions=[StaleElementReferenceException])

    browser.get(f"{clinic_url}/?tenant={TENANT}")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "sign-in").click()
    wait.until(lambda d: d.current_url.endswith("/board"))
    wait.until(lambda d: d.find_element(By.ID, "live").text == "● Live")
    assert "No active alerts." in browser.find_element(By.ID, "board").text
    browser.execute_script("window.notReloaded = true;")

    start = datetime.now(UTC) - timedelta(seconds=30)
    publish_all(pipeline.stack.publisher, [
        (m.topic, batch_payload(m, spo2_series(start, values)), 2 * len(values))
        for m, values in ((first, [84.0] * 6), (second, [87.0] * 6))
    ] + _news2_messages(first, start))  # fmt: skip
    wait.until(lambda d: _row(d, first.patient) and _row(d, second.patient))
    wait.until(
        lambda d: "DURAND Paul, born 1941-07-02, bed 7A" in (_row(d, first.patient) or d).text
    )
    assert second.patient in (_row(browser, second.patient) or browser).text
    # RR 22 (2), SpO2 84 (3), air (0), SBP 128 (0), HR 115 (2), alert (0), 38.2 Cel (1).
    wait.until(lambda d: "NEWS2 8 · high" in (_row(d, first.patient) or d).text)
    wait.until(lambda d: any(p in (_row(d, first.patient) or d).text for p in ("HIGH", "MEDIUM")))
    assert browser.execute_script("return window.notReloaded === true;"), "the page was reloaded"
    browser.save_screenshot(str(tmp_path / "board-opened.png"))

    wait.until(lambda d: _click(d, first.patient, "button.ack"))
    wait.until(lambda d: _state(d, first.patient) == "acknowledged")
    wait.until(lambda d: "Acknowledged by" in (_row(d, first.patient) or d).text)
    assert _fits_width(browser), "the board scrolls sideways on a tablet"
    if os.environ.get("VEILLE_UPDATE_DOCS_SCREENSHOT"):  # the README's, refreshed on request
        browser.save_screenshot(str(DOCS_SCREENSHOT))
    browser.save_screenshot(str(tmp_path / "board-acknowledged.png"))
    browser.set_window_size(*PHONE)
    wait.until(_fits_width)  # re-laid out for a phone: one column, nothing cut off sideways
    browser.save_screenshot(str(tmp_path / "board-phone.png"))
    browser.set_window_size(*TABLET)

    wait.until(lambda d: _click(d, first.patient, "button.resolve"))
    wait.until(lambda d: d.find_element(By.ID, "resolve-dialog").is_displayed())
    browser.find_element(By.ID, "resolve-note").send_keys("probe refitted, SpO2 back to 96 %")
    browser.find_element(By.ID, "resolve-confirm").click()
    wait.until(lambda d: _row(d, first.patient) is None)
    assert _row(browser, second.patient) is not None  # the other alert stays
    assert browser.execute_script("return window.notReloaded === true;"), "the page was reloaded"
    browser.save_screenshot(str(tmp_path / "board-resolved.png"))

    # The clinician's actions went through Kafka, the worker and the sink into the database.
    resolved_by = asyncio.run(eventually(
        lambda: scalar(pipeline.stack.dsn, "SELECT resolved_by FROM alerts WHERE patient_pseudonym = %s "
                       "AND state = 'resolved'", first.patient),
        lambda who: who == username, what="resolution recorded by the sink"))  # fmt: skip
    assert resolved_by == username
    pipeline.assert_all_alive()
