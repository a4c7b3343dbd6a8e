"""Building the local stack's certificates, in memory: a CA and a server certificate it signs.

Pure: keys and certificates in, keys and certificates out, the time passed in. Writing them
to disk (and deciding what to keep) is :mod:`._cert_files`' job.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CA_VALID_DAYS",
    "SERVER_ADDRESSES",
    "SERVER_HOSTNAMES",
    "SERVER_VALID_DAYS",
    "IssuedCertificate",
    "ca_problem",
    "make_ca",
    "make_server_certificate",
    "server_certificate_problem",
]

CA_VALID_DAYS = 5 * 365  # a local CA outlives many server certificates; re-made with --force
SERVER_VALID_DAYS = 397  # the CA/Browser Forum's ceiling for a server certificate since 2020
RENEW_BEFORE = timedelta(days=30)  # a server certificate this close to its end is re-issued
CLOCK_SKEW = timedelta(minutes=5)  # not-before set back so a slightly slow clock accepts it
SERVER_HOSTNAMES = ("localhost",)
SERVER_ADDRESSES = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A private key and its certificate (EC P-256: small, fast, accepted by Mosquitto)."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Veille local stack"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca(*, now: datetime, common_name: str = "Veille local CA") -> IssuedCertificate:
    """A self-signed CA that may sign server certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    name = _name(common_name)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage("key_cert_sign", "crl_sign"), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return IssuedCertificate(key, certificate)


def make_server_certificate(ca: IssuedCertificate, *, now: datetime) -> IssuedCertificate:
    """A TLS server certificate for the local stack: localhost, 127.0.0.1 and ::1."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in SERVER_HOSTNAMES]
    names += [x509.IPAddress(a) for a in SERVER_ADDRESSES]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(SERVER_HOSTNAMES[0]))
        .issuer_name(ca.certificate.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=SERVER_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage("digital_signature"), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    return IssuedCertificate(key, certificate)


def _same_public_key(a: IssuedCertificate) -> bool:
    return bool(a.key.public_key() == a.certificate.public_key())


def ca_problem(ca: IssuedCertificate, *, now: datetime) -> str | None:
    """Why ``ca`` cannot sign the stack's certificates, or None when it can."""
    try:
        constraints = ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return "it is not a CA certificate (no basic constraints)"
    if not constraints.value.ca:
        return "it is not a CA certificate"
    if not _same_public_key(ca):
        return "its key does not match its certificate"
    if ca.certificate.not_valid_after_utc <= now + timedelta(days=SERVER_VALID_DAYS):
        return f"it expires on {ca.certificate.not_valid_after_utc:%Y-%m-%d}"
    return None


def server_certificate_problem(
    server: IssuedCertificate, ca: IssuedCertificate, *, now: datetime
) -> str | None:
    """Why ``server`` should be re-issued, or None when it is good for a while yet."""
    if not _same_public_key(server):
        return "its key does not match its certificate"
    try:
        server.certificate.verify_directly_issued_by(ca.certificate)
    except (ValueError, TypeError, InvalidSignature):
        return "it was not signed by this CA"
    if server.certificate.not_valid_after_utc <= now + RENEW_BEFORE:
        return f"it expires on {server.certificate.not_valid_after_utc:%Y-%m-%d}"
    return None


_KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def _key_usage(*allowed: str) -> x509.KeyUsage:
    """``KeyUsage`` with only ``allowed`` set (the class wants every flag spelled out)."""
    unknown = set(allowed) - set(_KEY_USAGES)
    if unknown:
        raise ValueError(f"unknown key usage: {sorted(unknown)}")
    return x509.KeyUsage(**{usage: usage in allowed for usage in _KEY_USAGES})
