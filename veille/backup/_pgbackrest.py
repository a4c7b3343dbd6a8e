"""Running ``pgbackrest``: as the data directory's owner, the key from the environment,
and its failures turned into errors that say what went wrong and what to do.

pgBackRest 2.45 exits 0 from ``verify`` and ``info`` even when the repository is damaged or
cannot be decrypted: both report it in their output, which is therefore always read.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veille.errors import BackupError, ConfigurationError, MissingDependencyError
from veille.settings import Settings

__all__ = ["PgBackRest"]

CIPHER_PASS_VARIABLE = "PGBACKREST_REPO1_CIPHER_PASS"  # noqa: S105 - a variable name
USABLE_STATUS = (0, 2)  # `info` status codes: ok, no valid backup (yet)
WRONG_KEY_HINT = (
    "the repository cannot be decrypted with this key: VEILLE_BACKUP_CIPHER_PASS (or "
    "repo1-cipher-pass) is not the key it was created with, or its info files are damaged"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PgBackRest:
    """One stanza of one pgBackRest configuration, run as ``user`` (None: ourselves)."""

    config: Path
    stanza: str
    cipher_pass: str | None
    user: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> PgBackRest:
        if settings.backup_config is None:
            raise ConfigurationError(
                "VEILLE_BACKUP_CONFIG is not set: start the local stack (`veille stack up` "
                "writes it to stack.env) or point it at your pgBackRest configuration file"
            )
        config = settings.backup_config.resolve()
        if not config.is_file():
            raise ConfigurationError(f"VEILLE_BACKUP_CONFIG: {config} does not exist")
        secret = settings.backup_cipher_pass
        return cls(
            config=config,
            stanza=settings.backup_stanza,
            cipher_pass=secret.get_secret_value() if secret else None,
            user=_run_as(config),
        )

    def with_cipher_pass(self, cipher_pass: str) -> PgBackRest:
        return PgBackRest(
            config=self.config, stanza=self.stanza, cipher_pass=cipher_pass, user=self.user
        )

    def environment(self) -> dict[str, str]:
        """What a process that runs pgBackRest (``archive-get`` in a restored cluster) needs."""
        env = dict(os.environ)  # PGBACKREST_* options given by the operator apply too
        if self.cipher_pass is not None:
            env[CIPHER_PASS_VARIABLE] = self.cipher_pass
        passfile = self.config.parent / "pgpass"  # the local stack's (see veille.stack)
        if passfile.exists():
            env["PGPASSFILE"] = str(passfile)
        return env

    async def run(self, command: str, *options: str) -> str:
        """``pgbackrest COMMAND OPTIONS``; its standard output, or BackupError."""
        if shutil.which("pgbackrest") is None:
            raise MissingDependencyError(
                "pgbackrest not found; run `apt-get install -y pgbackrest` (or `make bootstrap`)"
            )
        argv = ["pgbackrest", f"--config={self.config}", f"--stanza={self.stanza}"]
        proc = await asyncio.create_subprocess_exec(
            *argv, "--log-level-console=error", "--log-level-stderr=error", *options, command,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=self.environment(), cwd=self.config.parent,
            user=self.user, group=self.user, extra_groups=[] if self.user else None,
        )  # fmt: skip
        out, err = await proc.communicate()
        if proc.returncode != 0:
            said = (err or out).decode(errors="replace").strip()
            raise BackupError(f"pgbackrest {command} failed (exit {proc.returncode}): {said}")
        return out.decode(errors="replace")

    async def info(self) -> dict[str, Any]:
        """The stanza's ``info --output=json``, refused when the repository is unreadable."""
        # strict=False: 2.45 puts raw newlines inside the messages of its JSON.
        stanzas = json.loads(await self.run("info", "--output=json"), strict=False)
        stanza: dict[str, Any] = next(s for s in stanzas if s["name"] == self.stanza)
        status = stanza["status"]
        if status["code"] not in USABLE_STATUS:
            # The stanza says "other"; each repository says what went wrong.
            said = [str(r["status"]["message"]) for r in stanza.get("repo", []) if "status" in r]
            message = "; ".join(said) or str(status["message"])
            if "[FormatError]" in message or "[CryptoError]" in message:
                raise BackupError(f"{WRONG_KEY_HINT}. pgBackRest said: {message}")
            raise BackupError(
                f"the backup repository of stanza {self.stanza!r} is not usable: {message}"
            )
        return stanza

    async def verify(self, label: str | None = None) -> str:
        """``pgbackrest verify``: every file of the repository against the checksum its
        (encrypted) manifest records; BackupError naming what is invalid."""
        options = ["--output=text", "--verbose=y"] + ([f"--set={label}"] if label else [])
        report = await self.run("verify", *options)
        if "status: error" in report:
            if "No usable backup.info" in report or "No usable archive.info" in report:
                raise BackupError(f"{WRONG_KEY_HINT}. pgBackRest verify said:\n{report}")
            raise BackupError(
                "the backup repository is damaged or was tampered with: a file does not match "
                "the checksum recorded in its manifest; do not restore from the sets named "
                f"below, take a new full backup (`veille backup --type=full`).\n{report}"
            )
        return report


def _run_as(config: Path) -> str | None:
    """pgBackRest must run as the data directory's owner, who owns its configuration: as
    root we switch to that user (the local stack's ``postgres``)."""
    if os.geteuid() != 0:
        return None
    owner = pwd.getpwuid(config.stat().st_uid).pw_name
    return None if owner == "root" else owner
