"""The local stack's certificate directory: what is kept, what is (re)made, how keys are written.

Private keys are written to a temporary file created with mode 0600 (``O_EXCL``: never an
existing file, never a moment with wider permissions) in the same directory, flushed, then
renamed over the old one; certificates likewise with mode 0644.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from veille.errors import ConfigurationError

from ._certs import (
    IssuedCertificate,
    ca_problem,
    make_ca,
    make_server_certificate,
    server_certificate_problem,
)

__all__ = [
    "CERTS_DIR_NAME",
    "CertificateFiles",
    "ensure_certificates",
    "write_private_file",
]

CERTS_DIR_NAME = "certs"  # inside the state directory by default
KEY_MODE = 0o600  # private keys: their owner only
CERT_MODE = 0o644  # certificates are public


@dataclass(frozen=True, slots=True)
class CertificateFiles:
    """Where ``veille certs`` keeps the CA and the server certificate (PEM)."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca-key.pem"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server-key.pem"

    def keys(self) -> tuple[Path, Path]:
        return (self.ca_key, self.server_key)


def write_private_file(path: Path, data: bytes, *, mode: int = KEY_MODE) -> None:
    """Replace ``path`` atomically by a file holding ``data`` with exactly ``mode``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits off a certificate's 0644
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write(issued: IssuedCertificate, cert_path: Path, key_path: Path) -> None:
    key_pem = issued.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),  # read unattended by the broker at start
    )
    write_private_file(key_path, key_pem, mode=KEY_MODE)
    cert_pem = issued.certificate.public_bytes(serialization.Encoding.PEM)
    write_private_file(cert_path, cert_pem, mode=CERT_MODE)


def _read(cert_path: Path, key_path: Path) -> IssuedCertificate:
    """A key and certificate pair from disk; ValueError when either is not what it should be."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (TypeError, UnsupportedAlgorithm) as exc:  # an encrypted key, an unknown algorithm
        raise ValueError(f"{key_path}: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path} is not an EC private key")
    return IssuedCertificate(key, certificate)


def _until(issued: IssuedCertificate) -> str:
    return f"valid until {issued.certificate.not_valid_after_utc:%Y-%m-%d}"


def _load_ca(files: CertificateFiles, now: datetime) -> IssuedCertificate | None:
    """The CA on disk, None when there is none; refuses a CA that cannot be used."""
    present = [p for p in (files.ca_cert, files.ca_key) if p.exists()]
    if not present:
        return None
    fix = "run `veille certs --force` to make a new CA (clients must then trust the new ca.pem)"
    if len(present) == 1:
        raise ConfigurationError(f"{present[0]} exists without its pair; {fix}")
    try:
        ca = _read(files.ca_cert, files.ca_key)
    except ValueError as exc:
        raise ConfigurationError(f"cannot read the CA in {files.directory}: {exc}; {fix}") from exc
    if problem := ca_problem(ca, now=now):
        raise ConfigurationError(f"the CA {files.ca_cert} cannot be used: {problem}; {fix}")
    return ca


def _server_problem(files: CertificateFiles, ca: IssuedCertificate, now: datetime) -> str | None:
    if not (files.server_cert.exists() and files.server_key.exists()):
        return "there was none"
    try:
        server = _read(files.server_cert, files.server_key)
    except ValueError as exc:
        return f"the old one could not be read ({exc})"
    if problem := server_certificate_problem(server, ca, now=now):
        return f"the old one {problem.removeprefix('it ')}"
    return None


def ensure_certificates(
    files: CertificateFiles,
    *,
    renew: bool = False,
    force: bool = False,
    now: datetime | None = None,
) -> list[str]:
    """Make what is missing in ``files``; returns one line per certificate saying what happened.

    A valid CA is always kept unless ``force``; a CA that cannot be used is never overwritten
    without ``force`` (:class:`ConfigurationError`). The server certificate is kept while it
    is signed by the CA and not near its end, unless ``renew`` (or a new CA) asks for a new one.
    """
    now = now or datetime.now(UTC)
    files.directory.mkdir(parents=True, exist_ok=True)
    ca = None if force else _load_ca(files, now)
    report: list[str] = []
    if ca is None:
        ca = make_ca(now=now)
        _write(ca, files.ca_cert, files.ca_key)
        report.append(f"CA created: {files.ca_cert} ({_until(ca)}), key {files.ca_key}")
        why: str | None = "a new CA was made"
    else:
        report.append(f"CA kept: {files.ca_cert} ({_until(ca)})")
        why = "--renew was given" if renew else _server_problem(files, ca, now)
    if why is None:
        server = _read(files.server_cert, files.server_key)
        report.append(f"server certificate kept: {files.server_cert} ({_until(server)})")
    else:
        server = make_server_certificate(ca, now=now)
        _write(server, files.server_cert, files.server_key)
        report.append(
            f"server certificate issued: {files.server_cert} ({_until(server)}, "
            f"localhost, 127.0.0.1, ::1), key {files.server_key}; because {why}"
        )
    return report
