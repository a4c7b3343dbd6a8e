"""``veille certs``: the CA and server certificate verify, keys are 0600, re-runs keep them,
and a real TLS handshake works with our CA and fails without it."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from veille.errors import ConfigurationError
from veille.security import CertificateFiles, ensure_certificates, make_ca, write_private_file
from veille.security._certs import (
    CA_VALID_DAYS,
    SERVER_VALID_DAYS,
    make_server_certificate,
    server_certificate_problem,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def files(tmp_path: Path) -> CertificateFiles:
    return CertificateFiles(tmp_path / "certs")


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_the_ca_is_a_ca_that_may_sign_certificates_only() -> None:
    ca = make_ca(now=NOW).certificate
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert ca.not_valid_after_utc == NOW + timedelta(days=CA_VALID_DAYS)
    ca.verify_directly_issued_by(ca)  # self-signed


def test_the_server_certificate_is_signed_by_the_ca_for_the_local_names() -> None:
    ca = make_ca(now=NOW)
    server = make_server_certificate(ca, now=NOW).certificate
    server.verify_directly_issued_by(ca.certificate)  # issuer name and signature
    assert server.signature_hash_algorithm is not None
    signed_with = ec.ECDSA(server.signature_hash_algorithm)
    ca.key.public_key().verify(server.signature, server.tbs_certificate_bytes, signed_with)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert NOW < server.not_valid_after_utc <= NOW + timedelta(days=SERVER_VALID_DAYS)
    assert server.not_valid_before_utc < NOW


def test_a_certificate_of_another_ca_or_near_its_end_is_a_problem() -> None:
    ca, other = make_ca(now=NOW), make_ca(now=NOW)
    server = make_server_certificate(ca, now=NOW)
    assert server_certificate_problem(server, ca, now=NOW) is None
    assert server_certificate_problem(server, other, now=NOW) == "it was not signed by this CA"
    late = NOW + timedelta(days=SERVER_VALID_DAYS - 10)
    assert "expires" in (server_certificate_problem(server, ca, now=late) or "")


def test_keys_are_owner_only_and_certificates_world_readable(files: CertificateFiles) -> None:
    ensure_certificates(files, now=NOW)
    for key in files.keys():
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    for cert in (files.ca_cert, files.server_cert):
        assert stat.S_IMODE(cert.stat().st_mode) == 0o644
    assert [p.name for p in files.directory.iterdir() if p.name.startswith(".")] == []


def test_a_private_file_is_created_owner_only_whatever_was_there(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("old")
    path.chmod(0o644)
    write_private_file(path, b"new")
    assert (path.read_bytes(), stat.S_IMODE(path.stat().st_mode)) == (b"new", 0o600)


def test_a_rerun_keeps_a_valid_pair(files: CertificateFiles) -> None:
    ensure_certificates(files, now=NOW)
    before = {p: p.read_bytes() for p in files.directory.iterdir()}
    report = ensure_certificates(files, now=NOW + timedelta(days=1))
    assert report[0].startswith("CA kept") and report[1].startswith("server certificate kept")
    assert {p: p.read_bytes() for p in files.directory.iterdir()} == before


def test_renew_replaces_the_server_certificate_and_keeps_the_ca(files: CertificateFiles) -> None:
    ensure_certificates(files, now=NOW)
    ca, server = files.ca_cert.read_bytes(), files.server_cert.read_bytes()
    report = ensure_certificates(files, renew=True, now=NOW + timedelta(days=1))
    assert files.ca_cert.read_bytes() == ca
    assert files.server_cert.read_bytes() != server
    assert "--renew" in report[1]
    _cert(files.server_cert).verify_directly_issued_by(_cert(files.ca_cert))


def test_a_server_certificate_near_its_end_is_reissued(files: CertificateFiles) -> None:
    ensure_certificates(files, now=NOW)
    server = files.server_cert.read_bytes()
    report = ensure_certificates(files, now=NOW + timedelta(days=SERVER_VALID_DAYS - 5))
    assert files.server_cert.read_bytes() != server and "expires" in report[1]


def test_an_unusable_ca_is_not_overwritten_without_force(files: CertificateFiles) -> None:
    ensure_certificates(files, now=NOW)
    files.ca_key.unlink()
    ca = files.ca_cert.read_bytes()
    with pytest.raises(ConfigurationError, match="--force"):
        ensure_certificates(files, now=NOW)
    assert files.ca_cert.read_bytes() == ca
    report = ensure_certificates(files, force=True, now=NOW)
    assert report[0].startswith("CA created") and files.ca_cert.read_bytes() != ca
    _cert(files.server_cert).verify_directly_issued_by(_cert(files.ca_cert))


def test_force_replaces_a_valid_ca(files: CertificateFiles) -> None:
    ensure_certificates(files, now=NOW)
    ca = files.ca_cert.read_bytes()
    ensure_certificates(files, force=True, now=NOW)
    assert files.ca_cert.read_bytes() != ca


@pytest.fixture
def tls_server(files: CertificateFiles) -> Iterator[int]:
    """A one-connection-at-a-time TLS server on 127.0.0.1 with the server certificate."""
    ensure_certificates(files)  # now: the handshake checks validity against the real clock
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.server_cert, files.server_key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)  # so the loop sees `stop` (close() does not wake accept())
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"hello")
            except (ssl.SSLError, OSError):
                conn.close()  # the client refused our certificate: expected in one test

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()
    thread.join(timeout=5)


def test_a_client_trusting_the_ca_completes_the_handshake(
    files: CertificateFiles, tls_server: int
) -> None:
    context = ssl.create_default_context(cafile=files.ca_cert)
    for host in ("localhost", "127.0.0.1"):
        with (
            socket.create_connection(("127.0.0.1", tls_server), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            assert tls.recv(5) == b"hello"
            assert tls.getpeercert() is not None


def test_a_client_with_the_default_trust_store_refuses_the_server(tls_server: int) -> None:
    context = ssl.create_default_context()
    with socket.create_connection(("127.0.0.1", tls_server), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(raw, server_hostname="localhost")
