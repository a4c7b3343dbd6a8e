"""``veille doctor``'s checks: a deployment's settings, read for what would let an intruder in.

Each check is a function of the :class:`~veille.settings.Settings` (and, for key files, the
file system) returning one :class:`Finding`: ok, warning or fail, what was found, and how to
fix it. Nothing here connects to a server. With ``VEILLE_ENV=production`` a component refuses
to start while any check fails (:func:`veille.cli.main`).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from veille.settings import Settings

from ._cert_files import CERTS_DIR_NAME, CertificateFiles

__all__ = [
    "CHECKS",
    "DEVELOPMENT_PSEUDONYM_KEY",
    "KNOWN_DEFAULT_SECRETS",
    "MIN_PSEUDONYM_KEY_BYTES",
    "Finding",
    "Status",
    "check_clinic_cookie",
    "check_database_password",
    "check_database_tls",
    "check_default_passwords",
    "check_mqtt_ca_file",
    "check_mqtt_credentials",
    "check_mqtt_tls",
    "check_pseudonym_key",
    "check_secret_file_modes",
    "run_checks",
]

DEVELOPMENT_PSEUDONYM_KEY = "veille-local-development-key"  # veille.settings' default
MIN_PSEUDONYM_KEY_BYTES = 32  # HMAC-SHA256's own output size: a shorter key is the weak link
# Passwords nobody should find in production: the development key, the demo clinician's
# (veille.demo; a test keeps them equal) and the first ones an intruder tries.
KNOWN_DEFAULT_SECRETS = frozenset(
    {
        DEVELOPMENT_PSEUDONYM_KEY,
        "veille-demo-ward",
        "veille",
        "postgres",
        "mosquitto",
        "password",
        "changeme",
        "admin",
        "secret",
    }
)
_LOOPBACK_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1"})
_VERIFYING_SSLMODES = frozenset({"verify-ca", "verify-full"})


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's verdict; ``fix`` is empty when there is nothing to do."""

    check: str
    status: Status
    what: str
    fix: str = ""

    def line(self) -> str:
        fix = f" -> fix: {self.fix}" if self.fix else ""
        return f"{self.status.value:<7} {self.check:<18} {self.what}{fix}"


def _redacted(url: str) -> str:
    """``url`` without its user information (never print a password)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=host).geturl()


def _database(settings: Settings) -> dict[str, str] | None:
    """The database URL's parameters, None when libpq cannot parse it."""
    try:
        return {
            k: str(v) for k, v in conninfo_to_dict(settings.database_url.get_secret_value()).items()
        }
    except psycopg.ProgrammingError:
        return None


def check_mqtt_tls(settings: Settings) -> Finding:
    url = _redacted(settings.mqtt_url.get_secret_value())
    if urlsplit(settings.mqtt_url.get_secret_value()).scheme == "mqtts":
        return Finding("mqtt-tls", Status.OK, f"the broker is reached over TLS ({url})")
    return Finding(
        "mqtt-tls", Status.FAIL,
        f"VEILLE_MQTT_URL is {url}: readings and credentials cross the network in clear",
        "point VEILLE_MQTT_URL at the broker's TLS listener, mqtts://HOST:8883",
    )  # fmt: skip


def check_mqtt_ca_file(settings: Settings) -> Finding:
    path = settings.mqtt_ca_file
    fix = (
        "set VEILLE_MQTT_CA_FILE to the PEM bundle of the CA that signed the broker's "
        "certificate (the hospital's; locally `veille certs` writes ca.pem)"
    )
    if path is None:
        return Finding("mqtt-ca", Status.FAIL, "VEILLE_MQTT_CA_FILE is not set", fix)
    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        return Finding("mqtt-ca", Status.FAIL, f"VEILLE_MQTT_CA_FILE {path}: {exc}", fix)
    return Finding("mqtt-ca", Status.OK, f"CA bundle {path} is readable and holds certificates")


def check_mqtt_credentials(settings: Settings) -> Finding:
    parts = urlsplit(settings.mqtt_url.get_secret_value())
    cert, key = settings.mqtt_client_cert_file, settings.mqtt_client_key_file
    if (cert is None) != (key is None):
        return Finding(
            "mqtt-credentials", Status.FAIL,
            "only one of VEILLE_MQTT_CLIENT_CERT_FILE and VEILLE_MQTT_CLIENT_KEY_FILE is set",
            "set both (the client certificate and its private key), or neither",
        )  # fmt: skip
    if cert is not None and key is not None:
        missing = [str(p) for p in (cert, key) if not p.is_file()]
        if missing:
            return Finding(
                "mqtt-credentials", Status.FAIL, f"client certificate files missing: {missing}",
                "check VEILLE_MQTT_CLIENT_CERT_FILE and VEILLE_MQTT_CLIENT_KEY_FILE",
            )  # fmt: skip
        return Finding("mqtt-credentials", Status.OK, f"client certificate {cert} (mutual TLS)")
    if parts.username and parts.password:
        return Finding(
            "mqtt-credentials", Status.OK, f"MQTT user {parts.username!r} with a password"
        )
    return Finding(
        "mqtt-credentials", Status.FAIL,
        "the MQTT client connects anonymously (no user and password in VEILLE_MQTT_URL, no "
        "client certificate)",
        "give each component its own broker account, mqtts://USER:PASSWORD@HOST:8883, or a "
        "client certificate (VEILLE_MQTT_CLIENT_CERT_FILE and VEILLE_MQTT_CLIENT_KEY_FILE)",
    )  # fmt: skip


def check_pseudonym_key(settings: Settings) -> Finding:
    key = settings.pseudonym_key.get_secret_value()
    fix = (
        f"set VEILLE_PSEUDONYM_KEY to a random secret of {MIN_PSEUDONYM_KEY_BYTES} bytes or more "
        "(`python -c 'import secrets; print(secrets.token_urlsafe(48))'`), the same for every "
        "component, kept as carefully as the database: changing it changes every pseudonym"
    )
    if key == DEVELOPMENT_PSEUDONYM_KEY:
        return Finding(
            "pseudonym-key", Status.FAIL,
            "VEILLE_PSEUDONYM_KEY is the development default: anyone can turn a national id "
            "into its pseudonym",
            fix,
        )  # fmt: skip
    size = len(key.encode())
    if size < MIN_PSEUDONYM_KEY_BYTES:
        return Finding(
            "pseudonym-key", Status.FAIL,
            f"VEILLE_PSEUDONYM_KEY is {size} bytes long (at least {MIN_PSEUDONYM_KEY_BYTES})",
            fix,
        )  # fmt: skip
    return Finding("pseudonym-key", Status.OK, f"VEILLE_PSEUDONYM_KEY is set ({size} bytes)")


def check_default_passwords(settings: Settings) -> Finding:
    """The broker's and the database's passwords (the pseudonym key has its own check)."""
    found: list[str] = []
    if (urlsplit(settings.mqtt_url.get_secret_value()).password or "") in KNOWN_DEFAULT_SECRETS:
        found.append("VEILLE_MQTT_URL's password")
    database = _database(settings) or {}
    if database.get("password", "") in KNOWN_DEFAULT_SECRETS:
        found.append("VEILLE_DATABASE_URL's password")
    if found:
        return Finding(
            "default-passwords", Status.FAIL,
            f"a default or demonstration secret is in use: {', '.join(found)}",
            "replace it with a generated one (and change it where it is checked: the broker's "
            "account, the database role)",
        )  # fmt: skip
    return Finding("default-passwords", Status.OK, "no known default secret in the settings")


def _passfile(database: Mapping[str, str], environ: Mapping[str, str]) -> Path:
    """The password file libpq would read for this connection."""
    named = database.get("passfile") or environ.get("PGPASSFILE")
    return Path(named) if named else Path.home() / ".pgpass"


def _secret_files(settings: Settings, environ: Mapping[str, str]) -> list[Path]:
    """Every file a setting names (or implies) that holds a key or a password, if it exists."""
    database = _database(settings) or {}
    candidates: list[Path] = [
        *CertificateFiles(settings.state_dir / CERTS_DIR_NAME).keys(),
        settings.state_dir / "stack.env",  # the local stack's database and broker passwords
        settings.state_dir / "stack.json",  # the same passwords, as `veille stack` keeps them
        settings.state_dir / "mosquitto" / "dynamic-security.json",  # broker password hashes
        _passfile(database, environ),
    ]
    if settings.mqtt_client_key_file is not None:
        candidates.append(settings.mqtt_client_key_file)
    if sslkey := database.get("sslkey"):
        candidates.append(Path(sslkey))
    return [path for path in candidates if path.is_file()]


def check_secret_file_modes(
    settings: Settings, *, environ: Mapping[str, str] | None = None
) -> Finding:
    environ = os.environ if environ is None else environ
    files = _secret_files(settings, environ)
    exposed = [f"{p} ({p.stat().st_mode & 0o777:o})" for p in files if p.stat().st_mode & 0o077]
    if exposed:
        return Finding(
            "secret-file-modes", Status.FAIL,
            f"key or password files readable by others: {', '.join(exposed)}",
            "chmod 600 each of them (owned by the account the component runs as)",
        )  # fmt: skip
    if not files:
        return Finding("secret-file-modes", Status.OK, "no key or password file named")
    return Finding(
        "secret-file-modes", Status.OK, f"{len(files)} key or password file(s), owner only"
    )


def check_mqtt_simulator_account(settings: Settings) -> Finding:
    """The simulated fleet's account may publish as any device: a test tool, not production."""
    if settings.mqtt_simulator_url is None:
        return Finding("mqtt-simulator", Status.OK, "no simulated-fleet broker account configured")
    return Finding(
        "mqtt-simulator", Status.WARNING,
        "VEILLE_MQTT_SIMULATOR_URL is set: an account that may publish any device's readings "
        "exists on this broker (right for the local stack, the bench and tests only)",
        "in production, delete the account (mosquitto_ctrl ... dynsec deleteClient "
        "veille-simulator) and unset VEILLE_MQTT_SIMULATOR_URL",
    )  # fmt: skip


def check_database_password(settings: Settings) -> Finding:
    database = _database(settings)
    if database is None:
        return Finding(
            "database-password", Status.FAIL, "VEILLE_DATABASE_URL is not a libpq URL",
            "postgresql://USER@HOST:5432/DBNAME (see the PostgreSQL manual, libpq connection "
            "strings)",
        )  # fmt: skip
    if "password" in database:
        return Finding(
            "database-password", Status.WARNING,
            "VEILLE_DATABASE_URL carries the password: it is in every component's environment",
            "leave it out of the URL and give it to libpq in a password file (PGPASSFILE or "
            "~/.pgpass, mode 0600), or use a client certificate (sslcert, sslkey)",
        )  # fmt: skip
    return Finding("database-password", Status.OK, "no password in VEILLE_DATABASE_URL")


def check_database_tls(settings: Settings) -> Finding:
    database = _database(settings) or {}
    hosts = {h for h in database.get("host", "").split(",") if not h.startswith("/")}
    if hosts <= _LOOPBACK_HOSTS:
        return Finding("database-tls", Status.OK, "the database is on this host")
    if database.get("sslmode") in _VERIFYING_SSLMODES:
        return Finding("database-tls", Status.OK, "the database's certificate is verified")
    return Finding(
        "database-tls", Status.WARNING,
        f"the database at {', '.join(sorted(hosts))} is reached without verifying its "
        f"certificate (sslmode={database.get('sslmode', 'prefer')})",
        "add sslmode=verify-full&sslrootcert=CA.pem to VEILLE_DATABASE_URL",
    )  # fmt: skip


def check_clinic_cookie(settings: Settings) -> Finding:
    if settings.clinic_cookie_secure:
        return Finding("clinic-cookie", Status.OK, "the session cookie is sent over HTTPS only")
    return Finding(
        "clinic-cookie", Status.FAIL,
        "VEILLE_CLINIC_COOKIE_SECURE is false: a clinician's session travels over plain HTTP",
        "unset VEILLE_CLINIC_COOKIE_SECURE (default true) and serve the clinic behind HTTPS",
    )  # fmt: skip


CHECKS: tuple[Callable[[Settings], Finding], ...] = (
    check_mqtt_tls,
    check_mqtt_ca_file,
    check_mqtt_credentials,
    check_pseudonym_key,
    check_default_passwords,
    check_secret_file_modes,
    check_mqtt_simulator_account,
    check_database_password,
    check_database_tls,
    check_clinic_cookie,
)


def run_checks(settings: Settings) -> list[Finding]:
    """Every check, in the order ``veille doctor`` prints them."""
    return [check(settings) for check in CHECKS]
