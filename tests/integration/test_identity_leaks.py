"""Names and national identifiers stay in ``patient_identities``: the pipeline carries pseudonyms.

Patients with made-up names, birth dates, beds and national identifiers (random tokens: a
match cannot be a coincidence) are admitted and their devices bound through the CLI, as an
operator does; their readings open alerts that a webhook receiver gets, bad input is
dead-lettered, and a nurse has the clinic reveal the names once. Then every place the
identity must not reach is searched, case-insensitively, for each of those strings:

- every Kafka topic the broker lists (Faust's changelog and internal topics included), from
  the beginning: record keys, values and headers;
- every log file of the stack (PostgreSQL, Tansu, Mosquitto) and of the components (gateway,
  validator, detector, sink, clinic, webhook dispatcher), and the CLI's stdout and stderr;
- every row of every table and materialised view but ``patient_identities`` (dead letters,
  alerts, alert events, audit events, webhook deliveries among them), all columns;
- every webhook body received.

- every component's Prometheus ``/metrics`` page (gateway, validator, detector, sink, webhook
  dispatcher), where not even a pseudonym may appear: labels name care units, never people
  (the clinic's page is checked in ``test_clinic_api``). Faust's own web port serves only
  ``/router`` and ``/table`` (table names).

Each search also shows that it saw the data it searched: the pseudonyms appear where the
names must not.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import secrets
import sys
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from psycopg import sql

from streams.runtime import true_end_offsets
from tests.integration.conftest import RunningPipeline
from tests.support.clinic import running_clinic
from tests.support.devices import (
    TENANT,
    batch_payload,
    provision,
    single_payload,
    spo2_series,
)
from tests.support.devices import (
    TestDevice as Device,
)
from tests.support.patients import PASSWORD, add_nurse
from tests.support.pipeline import count, publish_all
from tests.support.waiting import eventually
from tests.support.webhooks import Receiver, running_receiver, start_dispatcher

pytestmark = pytest.mark.slow

PATIENTS = 3
PSEUDONYM = re.compile(r"patient (p-[0-9a-f]{24}) admitted")


@dataclasses.dataclass(frozen=True)
class SeededPatient:
    national_id: str
    family: str
    given: str
    born: date
    bed: str
    device_id: str

    @classmethod
    def made_up(cls) -> SeededPatient:
        tag = secrets.token_hex(5)
        born = date(1921, 1, 1) + timedelta(days=secrets.randbelow(20 * 365))
        return cls(
            national_id=f"NIR{secrets.randbelow(10**13):013d}", family=f"Zyxqvortel{tag}",
            given=f"Quilbrenna{tag}", born=born, bed=f"Lit-{tag}", device_id=f"leak-{tag}",
        )  # fmt: skip

    def needles(self) -> dict[str, str]:
        """What identifies the patient, as it could be written: a match is a leak."""
        return {
            "national id": self.national_id,
            "family name": self.family,
            "given names": self.given,
            "birth date": self.born.isoformat(),
            "birth date (dd/mm/yyyy)": self.born.strftime("%d/%m/%Y"),
            "bed": self.bed,
        }


@dataclasses.dataclass
class Leaks:
    """Where each identity string was found; ``searched`` counts what each search read."""

    needles: dict[str, str]  # the string -> what it is
    pseudonyms: set[str]
    found: list[str] = dataclasses.field(default_factory=list)
    searched: Counter[str] = dataclasses.field(default_factory=Counter)
    pseudonyms_seen: dict[str, set[str]] = dataclasses.field(default_factory=dict)

    def search(self, where: str, source: str, haystack: bytes | str | None) -> None:
        if haystack is None:
            return
        text = haystack.decode(errors="replace") if isinstance(haystack, bytes) else haystack
        self.searched[source] += 1
        folded = text.casefold()
        for needle, what in self.needles.items():
            if needle.casefold() in folded:
                self.found.append(f"{what} {needle!r} in {where}")
        seen = {p for p in self.pseudonyms if p in text}
        self.pseudonyms_seen.setdefault(source, set()).update(seen)


async def _veille(*args: str, env: dict[str, str]) -> str:
    """``veille ARGS`` as an operator runs it; its stdout and stderr together."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "veille", *args, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    text = out.decode(errors="replace")
    assert process.returncode == 0, text
    return text


async def _admit_and_bind(
    env: dict[str, str], dsn: str, patient: SeededPatient, unit: str
) -> tuple[str, list[str]]:
    """Admission and binding through the CLI, with the national identifier; the pseudonym."""
    admitted = await _veille(
        "patients", "admit", "--patient-id", patient.national_id, "--tenant", TENANT,
        "--care-unit", unit, "--family", patient.family, "--given", patient.given,
        "--birth-date", patient.born.isoformat(), "--bed", patient.bed, env=env,
    )  # fmt: skip
    match = PSEUDONYM.search(admitted)
    assert match, admitted
    pseudonym = match.group(1)
    # Provisioned and first bound two hours ago, then bound again by national identifier.
    two_hours_ago = int((datetime.now(UTC) - timedelta(hours=2)).timestamp() * 1e6)
    device = Device(patient.device_id, pseudonym, unit)
    await provision(dsn, device, since_us=two_hours_ago)
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    bound = await _veille(
        "devices", "bind", patient.device_id, "--patient", patient.national_id,
        "--care-unit", unit, "--since", since, env=env,
    )  # fmt: skip
    assert f"bound to {pseudonym}" in bound, bound  # one key: the same patient
    return pseudonym, [admitted, bound]


def _bad_input(device: Device) -> list[tuple[str, bytes, int]]:
    """Refused by the validator, each a dead letter: not JSON, an unknown metric, a mass
    for a saturation, and a device nobody provisioned."""
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    stranger = dataclasses.replace(device, device_id=f"{device.device_id}-stranger")
    return [
        (device.topic, f'{{"v": 1, "device_id": "{device.device_id}", "read'.encode(), 1),
        (device.topic, single_payload(device, {"seq": 9001, "metric": "mood", "value": 3,
                                               "unit": "1", "measured_at": at}), 1),
        (device.topic, single_payload(device, {"seq": 9002, "metric": "spo2", "value": 97,
                                               "unit": "kg", "measured_at": at}), 1),
        (stranger.topic, single_payload(stranger, {"seq": 1, "metric": "spo2", "value": 97,
                                                   "unit": "%", "measured_at": at}), 1),
    ]  # fmt: skip


async def _reveal(clinic_url: str, username: str, patients: dict[str, SeededPatient]) -> None:
    """The clinic shows the names to the patients' nurse: the reveal path ran, the names are
    in the database for the searches below to find, were they anywhere else."""
    async with httpx.AsyncClient(base_url=f"{clinic_url}/api/v1", timeout=30) as nurse:
        login = {"tenant": TENANT, "username": username, "password": PASSWORD}
        assert (await nurse.post("/session", json=login)).status_code == 201
        r = await nurse.get("/identities", params={"patient": sorted(patients)})
        assert r.status_code == 200, r.text
        shown = {i["patient"]: i["display"] for i in r.json()["identities"]}
        assert set(shown) == set(patients)
        for pseudonym, patient in patients.items():
            assert patient.family.upper() in shown[pseudonym]
            assert patient.born.isoformat() in shown[pseudonym]
        first = sorted(patients)[0]
        r = await nurse.get(f"/patients/{first}/identity")
        assert r.status_code == 200 and patients[first].given in r.json()["display"]


KafkaRecord = tuple[str, bytes | None, bytes | None, Sequence[tuple[str, bytes]]]


async def _kafka_records(bootstrap: str) -> AsyncIterator[KafkaRecord]:
    """Every record of every topic the broker lists, from the beginning to the true end:
    topic, key, value, headers."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        topics = await consumer.topics()
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await true_end_offsets(bootstrap, await consumer.end_offsets(tps))
        idle = 0
        while idle < 10 and [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            idle = 0 if batch else idle + 1
            for tp, records in batch.items():
                for r in records:
                    yield tp.topic, r.key, r.value, r.headers or ()
        behind = {tp: ends[tp] for tp in tps if await consumer.position(tp) < ends[tp]}
        assert not behind, f"Kafka not read to its end: {behind}"
    finally:
        await consumer.stop()


async def _search_kafka(leaks: Leaks, bootstrap: str) -> Counter[str]:
    per_topic: Counter[str] = Counter()
    async for topic, key, value, headers in _kafka_records(bootstrap):
        per_topic[topic] += 1
        leaks.search(f"Kafka {topic} key", "kafka", key)
        leaks.search(f"Kafka {topic} value", "kafka", value)
        for name, header in headers:
            leaks.search(
                f"Kafka {topic} header {name}",
                "kafka",
                f"{name}: {header.decode(errors='replace')}",
            )
        leaks.search(f"Kafka {topic}", f"kafka-{topic}", (key or b"") + b" " + (value or b""))
    return per_topic


def _log_files(*dirs: Path) -> Iterator[Path]:
    for d in dirs:
        yield from (p for p in d.rglob("*.log") if p.is_file())


async def _tables(conn: psycopg.AsyncConnection) -> list[tuple[str, str]]:
    """Every table and materialised view of the application, partitions through their parent."""
    cur = await conn.execute(
        """SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition
             AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname NOT LIKE '%timescaledb%'
           ORDER BY 1, 2"""
    )
    return [(s, t) for s, t in await cur.fetchall()]


async def _search_database(leaks: Leaks, dsn: str) -> Counter[str]:
    """Each row as text (``t::text``: every column); the names' table itself excepted."""
    rows_per_table: Counter[str] = Counter()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        for schema, table in await _tables(conn):
            if table == "patient_identities":
                continue
            cur = await conn.execute(
                sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(schema, table))
            )
            async for (text,) in cur:
                rows_per_table[table] += 1
                leaks.search(f"table {schema}.{table}: {text[:200]}", "db-" + table, text)
    return rows_per_table


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        return str(response.read().decode())


async def test_no_name_or_national_id_outside_the_identities_table(
    pipeline: RunningPipeline, receiver: Receiver, tmp_path: Path
) -> None:
    env, dsn = pipeline.stack.env, pipeline.stack.dsn
    unit = f"leak-{uuid.uuid4().hex[:8]}"
    seeded = [SeededPatient.made_up() for _ in range(PATIENTS)]
    cli_output: list[str] = []
    dispatcher = start_dispatcher(pipeline, tmp_path / "webhooks", "webhooks")
    try:
        with running_clinic(env, tmp_path / "clinic") as clinic_url:
            admitted = await asyncio.gather(*(_admit_and_bind(env, dsn, p, unit) for p in seeded))
            patients = {pseudonym: p for (pseudonym, _), p in zip(admitted, seeded, strict=True)}
            cli_output += [text for _, texts in admitted for text in texts]
            cli_output.append(await _veille(
                "webhooks", "add", "--tenant", TENANT, "--care-unit", unit,
                "--url", receiver.url("/pager"), env=env,
            ))  # fmt: skip

            start = datetime.now(UTC) - timedelta(minutes=5)
            devices = [Device(p.device_id, pseudonym, unit) for pseudonym, p in patients.items()]
            messages = [
                (d.topic, batch_payload(d, spo2_series(start, [85.0] * 5)), 10) for d in devices
            ]
            messages += _bad_input(devices[0])
            publish_all(pipeline.stack.publisher, messages)

            await _reveal(clinic_url, await add_nurse(dsn, TENANT, unit), patients)

            async def opened_for() -> set[str]:
                bodies = [orjson.loads(r.body) for r in receiver.snapshot()]
                return {b["alert"]["patient"] for b in bodies if b["type"] == "alert.opened"}

            await eventually(opened_for, lambda got: got == set(patients), what="alerts delivered")
            dead_sql = "SELECT count(*) FROM dead_letters WHERE mqtt_topic = ANY(%s)"
            bad_topics = [m[0] for m in _bad_input(devices[0])]
            await eventually(lambda: count(dsn, dead_sql, bad_topics), lambda n: n >= 4,
                             what="dead letters")  # fmt: skip
            scraped = {c.name: await asyncio.to_thread(_scrape, c.metrics_url())
                       for c in [*pipeline.components, dispatcher]}  # fmt: skip
    finally:
        dispatcher.stop()
    pipeline.assert_all_alive()

    needles = {n: f"{what} of {p.device_id}" for p in seeded for what, n in p.needles().items()}
    leaks = Leaks(needles, set(patients))

    per_topic = await _search_kafka(leaks, pipeline.stack.settings.kafka_bootstrap)
    logs = list(_log_files(pipeline.stack.state_dir, tmp_path))
    for log in logs:
        leaks.search(f"log {log}", "logs", log.read_bytes())
    for i, text in enumerate(cli_output):
        leaks.search(f"CLI output {i}: {text[:200]}", "cli", text)
    rows = await _search_database(leaks, dsn)
    for name, page in scraped.items():
        leaks.search(f"metrics of {name}", "metrics", page)
    bodies = receiver.snapshot()
    for r in bodies:
        leaks.search(f"webhook body {r.body[:200]!r}", "webhooks", r.body)
        leaks.search(f"webhook headers {r.headers}", "webhook-headers", str(r.headers))

    assert leaks.found == [], "identity outside patient_identities:\n" + "\n".join(leaks.found)

    # The searches read the data: the pseudonyms stand where the names must not.
    topics = pipeline.stack.settings.topics
    assert all(per_topic[topic] > 0 for topic in topics.all()), per_topic
    assert any(t.endswith("-changelog") and n > 0 for t, n in per_topic.items()), per_topic
    assert leaks.searched["kafka"] >= sum(per_topic.values()) >= 15, per_topic
    assert leaks.pseudonyms_seen[f"kafka-{topics.readings}"] == set(patients)
    assert leaks.pseudonyms_seen[f"kafka-{topics.alerts}"] == set(patients)
    components = {"gateway", "validator", "detector", "sink", "clinic", "webhooks"}
    assert components <= {log.stem for log in logs if log.stat().st_size > 0}, logs
    assert leaks.pseudonyms_seen["logs"] == set(patients)  # the clinic's access log at least
    assert leaks.pseudonyms_seen["cli"] == set(patients)
    for table in ("alerts", "audit_events", "readings", "device_bindings"):
        assert leaks.pseudonyms_seen[f"db-{table}"] == set(patients), table
    for table in ("alert_events", "webhook_deliveries"):  # by alert id: no pseudonym
        assert rows[table] >= PATIENTS, rows
    assert rows["dead_letters"] >= 4, rows
    # The metrics pages were full (the unit's readings are counted there), and anonymous.
    assert f'care_unit="{unit}"' in scraped["sink"]
    assert not leaks.pseudonyms_seen.get("metrics"), leaks.pseudonyms_seen.get("metrics")
    assert leaks.pseudonyms_seen["webhooks"] == set(patients) and len(bodies) >= PATIENTS
