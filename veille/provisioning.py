"""Device provisioning across the registry and the broker: one credential, two hashes.

The registry (PostgreSQL) keeps the device, its binding and a scrypt hash of its credential;
the broker (Mosquitto's dynamic security) keeps an account of the same name with a PBKDF2
hash of the same credential and the right to publish on the device's one topic. The
credential itself is returned once and stored nowhere.

Order: the registry first (it refuses a duplicate active device), then the broker; if the
broker refuses, the registry entry is revoked again, so a device is never active in one and
missing from the other. Revocation goes the other way round (broker first: the device is cut
off at once, then the registry refuses its data from ``at``).
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from psycopg import AsyncConnection

from devices import DEVICE_TYPES, device_topic, parse_device_topic
from ingest import MqttEndpoint
from store import add_device, revoke_device, rotate_device_credential
from veille.errors import ConfigurationError
from veille.security import SERVICE_PREFIX, BrokerAdmin, DeviceAccount, write_private_file
from veille.settings import Settings

__all__ = [
    "CSV_COLUMNS",
    "Drift",
    "ImportedDevice",
    "ImportResult",
    "admin_endpoint",
    "compare_registry_and_broker",
    "import_devices",
    "provision_device",
    "read_device_csv",
    "revoke_device_everywhere",
    "rotate_device",
]

CSV_COLUMNS = ("device_id", "type", "tenant")
IMPORT_BATCH = 200  # devices per broker round trip and per credentials-file write


def admin_endpoint(settings: Settings) -> MqttEndpoint:
    """The broker's admin account (``VEILLE_MQTT_ADMIN_URL``) with the CA of the settings."""
    if settings.mqtt_admin_url is None:
        raise ConfigurationError(
            "VEILLE_MQTT_ADMIN_URL is not set: the device's broker account cannot be made. Set "
            "it to the dynamic security admin, mqtts://USER:PASSWORD@HOST:8883 (the local "
            "stack writes it into .veille/stack.env)"
        )
    return MqttEndpoint.from_settings(settings, settings.mqtt_admin_url.get_secret_value())


def _check_names(device_id: str, device_type: str, tenant: str) -> None:
    if parse_device_topic(device_topic(tenant, device_id)) is None:
        raise ConfigurationError(
            f"device id {device_id!r} or tenant {tenant!r} cannot be a topic segment: use "
            "letters, digits, '.', '_' and '-' (64 at most, starting with a letter or digit)"
        )
    if device_id.startswith(SERVICE_PREFIX):
        raise ConfigurationError(f"{device_id!r}: the prefix veille- is kept for service accounts")
    if device_type not in DEVICE_TYPES:
        raise ConfigurationError(
            f"unknown device type {device_type!r}; known types: {', '.join(DEVICE_TYPES)}"
        )


def _in_broker(admin: MqttEndpoint, accounts: list[DeviceAccount]) -> None:
    with BrokerAdmin(admin) as broker:
        broker.add_devices(accounts)


async def provision_device(
    conn: AsyncConnection, admin: MqttEndpoint, device_id: str, device_type: str, tenant: str
) -> str:
    """Registry entry and broker account; returns the credential (shown once)."""
    _check_names(device_id, device_type, tenant)
    credential = await add_device(conn, device_id, device_type, tenant)
    try:
        await asyncio.to_thread(_in_broker, admin, [DeviceAccount(device_id, tenant, credential)])
    except BaseException:
        await revoke_device(conn, device_id, at=datetime.now(UTC))
        raise
    return credential


async def revoke_device_everywhere(
    conn: AsyncConnection, admin: MqttEndpoint, device_id: str, *, at: datetime
) -> bool:
    """Delete the broker account (a connected device is disconnected at once), then revoke it
    in the registry from ``at``; returns whether a broker account existed."""

    def remove() -> bool:
        with BrokerAdmin(admin) as broker:
            return broker.remove_device(device_id)

    had_account = await asyncio.to_thread(remove)
    await revoke_device(conn, device_id, at=at)
    return had_account


async def rotate_device(conn: AsyncConnection, admin: MqttEndpoint, device_id: str) -> str:
    """A new credential in both places. The broker disconnects the device at once (measured
    with Mosquitto 2.0.11's plugin) and refuses the old credential from then on; a device that
    reconnects with the new one sends again what was not acknowledged, so nothing is lost."""

    def set_password(credential: str) -> None:
        with BrokerAdmin(admin) as broker:
            broker.set_device_password(device_id, credential)

    async def hand_over(credential: str) -> None:
        await asyncio.to_thread(set_password, credential)

    return await rotate_device_credential(conn, device_id, hand_over)


@dataclass(frozen=True, slots=True)
class Drift:
    """Where the registry and the broker disagree."""

    active_without_account: list[str]
    """Active in the registry, no broker account: the device cannot connect."""
    account_without_active_device: list[str]
    """A broker account with no active device behind it: someone may still publish."""

    @property
    def none(self) -> bool:
        return not (self.active_without_account or self.account_without_active_device)


async def compare_registry_and_broker(conn: AsyncConnection, admin: MqttEndpoint) -> Drift:
    """After a database restore, a lost plugin file, or devices provisioned before broker
    accounts existed: which side lacks what. Read-only."""

    def accounts() -> set[str]:
        with BrokerAdmin(admin) as broker:
            return broker.device_accounts()

    on_broker = await asyncio.to_thread(accounts)
    cur = await conn.execute("SELECT device_id FROM devices WHERE status = 'active'")
    active = {row[0] for row in await cur.fetchall()}
    return Drift(sorted(active - on_broker), sorted(on_broker - active))


@dataclass(frozen=True, slots=True)
class ImportedDevice:
    device_id: str
    device_type: str
    tenant: str


@dataclass(frozen=True, slots=True)
class ImportResult:
    provisioned: int
    skipped_active: list[str]
    credentials_file: Path


def read_device_csv(path: Path) -> list[ImportedDevice]:
    """Rows ``device_id,type,tenant`` (header required); every row checked before any write."""
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigurationError(
                f"{path}: missing column(s) {', '.join(missing)}; the header must name "
                f"{','.join(CSV_COLUMNS)}"
            )
        rows = [
            ImportedDevice(r["device_id"].strip(), r["type"].strip(), r["tenant"].strip())
            for r in reader
        ]
    problems: list[str] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        try:
            _check_names(row.device_id, row.device_type, row.tenant)
        except ConfigurationError as exc:
            problems.append(f"line {line}: {exc}")
        if row.device_id in seen:
            problems.append(f"line {line}: device {row.device_id!r} appears twice")
        seen.add(row.device_id)
    if problems:
        raise ConfigurationError(f"{path}: nothing imported\n" + "\n".join(problems[:20]))
    return rows


def _batches(rows: list[ImportedDevice]) -> Iterator[list[ImportedDevice]]:
    for start in range(0, len(rows), IMPORT_BATCH):
        yield rows[start : start + IMPORT_BATCH]


async def _active(conn: AsyncConnection, ids: list[str]) -> set[str]:
    cur = await conn.execute(
        "SELECT device_id FROM devices WHERE device_id = ANY(%s) AND status = 'active'", (ids,)
    )
    return {row[0] for row in await cur.fetchall()}


async def import_devices(
    conn: AsyncConnection, admin: MqttEndpoint, rows: list[ImportedDevice], credentials_out: Path
) -> ImportResult:
    """Provision many devices; their credentials go to ``credentials_out`` (created 0600,
    never overwritten) as ``device_id,tenant,credential``, for the fleet's installer.

    Devices already active are skipped (and listed), so an interrupted import is run again
    with the same file. Each batch is written to the credentials file as soon as the broker
    has it.
    """
    if credentials_out.exists():
        raise ConfigurationError(f"{credentials_out} exists; credentials are never overwritten")
    active = await _active(conn, [r.device_id for r in rows])
    todo = [r for r in rows if r.device_id not in active]
    lines = ["device_id,tenant,credential\n"]
    write_private_file(credentials_out, lines[0].encode())
    for batch in _batches(todo):
        accounts = [
            DeviceAccount(
                r.device_id, r.tenant, await add_device(conn, r.device_id, r.device_type, r.tenant)
            )
            for r in batch
        ]
        try:
            await asyncio.to_thread(_in_broker, admin, accounts)
        except BaseException:
            for account in accounts:
                await revoke_device(conn, account.device_id, at=datetime.now(UTC))
            raise
        lines += [f"{a.device_id},{a.tenant},{a.credential}\n" for a in accounts]
        write_private_file(credentials_out, "".join(lines).encode())
    return ImportResult(len(todo), sorted(active), credentials_out)
