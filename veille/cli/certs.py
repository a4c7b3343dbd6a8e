"""``veille certs``: a local CA and a TLS server certificate for the local stack."""

from __future__ import annotations

import argparse
from pathlib import Path

from veille.settings import Settings

from ._command import Subparsers, add_command

__all__ = ["register"]

HELP = "make a local CA and a server certificate for the local stack (TLS)"


def _certs(args: argparse.Namespace, settings: Settings) -> int:
    from veille.security import CERTS_DIR_NAME, CertificateFiles, ensure_certificates

    directory = Path(args.dir) if args.dir else settings.state_dir / CERTS_DIR_NAME
    for line in ensure_certificates(
        CertificateFiles(directory), renew=args.renew, force=args.force
    ):
        print(line)
    return 0


def register(sub: Subparsers) -> None:
    certs = add_command(
        sub, "certs", _certs, help=HELP,
        description="Make a local CA (EC P-256, 5 years) and a server certificate it signs "
        "(localhost, 127.0.0.1, ::1; 397 days) in $VEILLE_STATE_DIR/certs: ca.pem, "
        "ca-key.pem, server.pem, server-key.pem (keys mode 0600). Re-running keeps a valid "
        "pair. Production uses the hospital's certificates instead. See docs/SECURITY.md.",
    )  # fmt: skip
    certs.add_argument("--dir", help="where to keep them (default $VEILLE_STATE_DIR/certs)")
    certs.add_argument(
        "--renew", action="store_true", help="issue a new server certificate (the CA is kept)"
    )
    certs.add_argument(
        "--force", action="store_true",
        help="make a new CA too, replacing the old one (every client must trust the new ca.pem)",
    )  # fmt: skip
