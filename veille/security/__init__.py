"""Deployment security the front door owns: the local stack's certificates, the broker's
accounts and rights, and ``veille doctor``.

:mod:`._certs` builds a CA and a server certificate in memory; :mod:`._cert_files` keeps them
in a directory (keys written 0600, atomically); :mod:`._broker_accounts` drives Mosquitto's
dynamic security plugin; :mod:`._doctor` holds the configuration checks
that ``veille doctor`` prints and that ``VEILLE_ENV=production`` enforces. See docs/SECURITY.md.
"""

from __future__ import annotations

from ._broker_accounts import (
    GATEWAY_ACCOUNT,
    SERVICE_PREFIX,
    SIMULATOR_ACCOUNT,
    SIMULATOR_TOPIC,
    BrokerAdmin,
    BrokerAdminError,
    DeviceAccount,
    device_role,
)
from ._cert_files import CERTS_DIR_NAME, CertificateFiles, ensure_certificates, write_private_file
from ._certs import IssuedCertificate, make_ca, make_server_certificate
from ._doctor import CHECKS, Finding, Status, run_checks

__all__ = [
    "CERTS_DIR_NAME",
    "GATEWAY_ACCOUNT",
    "SIMULATOR_ACCOUNT",
    "SERVICE_PREFIX",
    "SIMULATOR_TOPIC",
    "BrokerAdmin",
    "BrokerAdminError",
    "DeviceAccount",
    "device_role",
    "CHECKS",
    "CertificateFiles",
    "Finding",
    "IssuedCertificate",
    "Status",
    "ensure_certificates",
    "make_ca",
    "make_server_certificate",
    "run_checks",
    "write_private_file",
]
