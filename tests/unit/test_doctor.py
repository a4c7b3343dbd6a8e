"""``veille doctor``'s checks one by one: each with a settings (or file) case that passes and
one that fails."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from veille.demo._provision import DEMO_PASSWORD
from veille.security import CertificateFiles, Status, ensure_certificates, run_checks
from veille.security._doctor import (
    DEVELOPMENT_PSEUDONYM_KEY,
    KNOWN_DEFAULT_SECRETS,
    check_clinic_cookie,
    check_database_password,
    check_database_tls,
    check_default_passwords,
    check_mqtt_ca_file,
    check_mqtt_credentials,
    check_mqtt_tls,
    check_pseudonym_key,
    check_secret_file_modes,
)
from veille.settings import Settings

GOOD_KEY = "k" * 48


@pytest.fixture
def make_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Settings from the arguments only: no VEILLE_ variable, an empty state directory."""
    for name in list(os.environ):
        if name.startswith("VEILLE_"):
            monkeypatch.delenv(name)
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("VEILLE_STATE_DIR", str(state))
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))  # not this machine's ~/.pgpass

    def make(**fields: Any) -> Settings:
        return Settings(**fields)

    return make


def test_the_development_defaults_are_the_known_secrets() -> None:
    default_key = Settings.model_fields["pseudonym_key"].default
    assert DEVELOPMENT_PSEUDONYM_KEY == default_key.get_secret_value()
    assert DEMO_PASSWORD in KNOWN_DEFAULT_SECRETS


def test_mqtt_tls(make_settings: Any) -> None:
    assert check_mqtt_tls(make_settings(mqtt_url="mqtts://b:8883")).status is Status.OK
    plain = check_mqtt_tls(make_settings(mqtt_url="mqtt://u:secretpw@b:1883"))
    assert plain.status is Status.FAIL and "mqtts://" in plain.fix
    assert "secretpw" not in plain.line()


def test_mqtt_ca_file(make_settings: Any, tmp_path: Path) -> None:
    files = CertificateFiles(tmp_path / "certs")
    ensure_certificates(files)
    assert check_mqtt_ca_file(make_settings(mqtt_ca_file=files.ca_cert)).status is Status.OK
    assert check_mqtt_ca_file(make_settings()).status is Status.FAIL
    missing = check_mqtt_ca_file(make_settings(mqtt_ca_file=tmp_path / "nope.pem"))
    assert missing.status is Status.FAIL and "VEILLE_MQTT_CA_FILE" in missing.fix
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    assert check_mqtt_ca_file(make_settings(mqtt_ca_file=not_pem)).status is Status.FAIL


def test_mqtt_credentials(make_settings: Any, tmp_path: Path) -> None:
    with_password = make_settings(mqtt_url="mqtts://gw-1:s3cret-long@b:8883")
    assert check_mqtt_credentials(with_password).status is Status.OK
    anonymous = check_mqtt_credentials(make_settings(mqtt_url="mqtts://b:8883"))
    assert anonymous.status is Status.FAIL and "anonymous" in anonymous.what
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("c")
    key.write_text("k")
    mutual = make_settings(mqtt_client_cert_file=cert, mqtt_client_key_file=key)
    assert check_mqtt_credentials(mutual).status is Status.OK
    half = make_settings(mqtt_client_cert_file=cert)
    assert check_mqtt_credentials(half).status is Status.FAIL


def test_pseudonym_key(make_settings: Any) -> None:
    assert check_pseudonym_key(make_settings(pseudonym_key=GOOD_KEY)).status is Status.OK
    default = check_pseudonym_key(make_settings())
    assert default.status is Status.FAIL and "development default" in default.what
    short = check_pseudonym_key(make_settings(pseudonym_key="x" * 31))
    assert short.status is Status.FAIL and "31 bytes" in short.what


def test_default_passwords(make_settings: Any) -> None:
    good = make_settings(
        mqtt_url="mqtts://gw:Zq8-long-generated@b:8883",
        database_url="postgresql://veille:Vx9-generated@db/veille",
    )
    assert check_default_passwords(good).status is Status.OK
    demo = make_settings(mqtt_url=f"mqtts://gw:{DEMO_PASSWORD}@b:8883")
    found = check_default_passwords(demo)
    assert found.status is Status.FAIL and "VEILLE_MQTT_URL" in found.what
    assert DEMO_PASSWORD not in found.line()
    postgres = make_settings(database_url="postgresql://postgres:postgres@db/veille")
    assert "VEILLE_DATABASE_URL" in check_default_passwords(postgres).what


def test_secret_file_modes(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings()
    files = CertificateFiles(settings.state_dir / "certs")
    ensure_certificates(files)
    passfile = tmp_path / "pgpass"
    passfile.write_text("db:5432:veille:veille:pw\n")
    passfile.chmod(0o600)
    environ = {"PGPASSFILE": str(passfile)}
    ok = check_secret_file_modes(settings, environ=environ)
    assert ok.status is Status.OK and "3 key" in ok.what
    files.ca_key.chmod(0o640)
    passfile.chmod(0o644)
    bad = check_secret_file_modes(settings, environ=environ)
    assert bad.status is Status.FAIL
    assert str(files.ca_key) in bad.what and str(passfile) in bad.what
    assert "chmod 600" in bad.fix


def test_the_client_key_file_is_checked_too(make_settings: Any, tmp_path: Path) -> None:
    key = tmp_path / "client-key.pem"
    key.write_text("k")
    key.chmod(0o644)
    settings = make_settings(mqtt_client_key_file=key)
    environ = {"PGPASSFILE": str(tmp_path / "none")}
    assert check_secret_file_modes(settings, environ=environ).status is Status.FAIL
    key.chmod(0o600)
    assert check_secret_file_modes(settings, environ=environ).status is Status.OK


def test_database_password(make_settings: Any) -> None:
    ok = make_settings(database_url="postgresql://veille@db/veille")
    assert check_database_password(ok).status is Status.OK
    inline = make_settings(database_url="postgresql://veille:pw@db/veille")
    assert check_database_password(inline).status is Status.WARNING
    broken = make_settings(database_url="postgresql://veille@db/veille?nonsense=1")
    assert check_database_password(broken).status is Status.FAIL


def test_database_tls(make_settings: Any) -> None:
    assert check_database_tls(make_settings()).status is Status.OK  # 127.0.0.1
    verified = make_settings(database_url="postgresql://v@db.example/v?sslmode=verify-full")
    assert check_database_tls(verified).status is Status.OK
    remote = make_settings(database_url="postgresql://v@db.example/v?sslmode=require")
    found = check_database_tls(remote)
    assert found.status is Status.WARNING and "verify-full" in found.fix


def test_clinic_cookie(make_settings: Any) -> None:
    assert check_clinic_cookie(make_settings()).status is Status.OK
    insecure = check_clinic_cookie(make_settings(clinic_cookie_secure=False))
    assert insecure.status is Status.FAIL and "VEILLE_CLINIC_COOKIE_SECURE" in insecure.fix


def test_a_hardened_configuration_passes_every_check(make_settings: Any, tmp_path: Path) -> None:
    files = CertificateFiles(tmp_path / "certs")
    ensure_certificates(files)
    settings = make_settings(
        env="production",
        mqtt_url="mqtts://gw-1:Zq8-long-generated@broker.example:8883",
        mqtt_ca_file=files.ca_cert,
        pseudonym_key=GOOD_KEY,
        database_url="postgresql://veille@db.example/veille?sslmode=verify-full",
    )
    findings = run_checks(settings)
    assert [f for f in findings if f.status is not Status.OK] == []
    assert all(f.fix == "" for f in findings)
