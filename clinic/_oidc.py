"""OIDC bearer tokens: for hospitals whose identity provider signs in the clinicians.

The token proves who the caller is (signature by one of the issuer's keys, ``iss``, ``aud``,
``exp``); what they may see still comes from Veille's own account of that name (role, care
units, not disabled). Keys are read from a JWKS file that ops refresh from the provider's
``jwks_uri``: the API never fetches anything at request time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import jwt

from veille.errors import ConfigurationError
from veille.settings import Settings

__all__ = ["OidcVerifier"]

# Asymmetric only: with HS256 anyone holding the shared secret could mint tokens.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
USERNAME_CLAIMS = ("preferred_username", "sub")
LEEWAY_S = 30  # clock skew tolerated between the provider and this host


class TokenRejected(Exception):
    """The token is not valid for this API; the message says why."""


@dataclass(frozen=True, slots=True)
class OidcVerifier:
    issuer: str
    audience: str
    tenant: str
    keys: jwt.PyJWKSet

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcVerifier | None:
        """None when no issuer is configured; an error when the configuration is partial."""
        if settings.clinic_oidc_issuer is None:
            return None
        missing = [
            name
            for name, value in (
                ("VEILLE_CLINIC_OIDC_AUDIENCE", settings.clinic_oidc_audience),
                ("VEILLE_CLINIC_OIDC_JWKS_PATH", settings.clinic_oidc_jwks_path),
                ("VEILLE_CLINIC_OIDC_TENANT", settings.clinic_oidc_tenant),
            )
            if not value
        ]
        if missing:
            raise ConfigurationError(
                f"VEILLE_CLINIC_OIDC_ISSUER is set but {', '.join(missing)} not; set them all "
                "or unset the issuer"
            )
        assert settings.clinic_oidc_audience and settings.clinic_oidc_jwks_path
        assert settings.clinic_oidc_tenant
        path = Path(settings.clinic_oidc_jwks_path)
        try:
            keys = jwt.PyJWKSet.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, jwt.PyJWTError) as exc:
            raise ConfigurationError(
                f"cannot read the issuer's keys from {path} (VEILLE_CLINIC_OIDC_JWKS_PATH): "
                f"{exc}; save the provider's jwks_uri document there"
            ) from exc
        return cls(
            settings.clinic_oidc_issuer, settings.clinic_oidc_audience,
            settings.clinic_oidc_tenant, keys,
        )  # fmt: skip

    def username(self, token: str) -> str:
        """The user the token names, once its signature and claims are verified."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self.keys[kid] if kid else self._single_key()
            claims = jwt.decode(
                token, key, algorithms=list(ALGORITHMS), audience=self.audience,
                issuer=self.issuer, leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )  # fmt: skip
        except KeyError as exc:
            raise TokenRejected(f"token signed with unknown key {exc}") from exc
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"invalid token: {exc}") from exc
        for claim in USERNAME_CLAIMS:
            value = claims.get(claim)
            if isinstance(value, str) and value:
                return value
        raise TokenRejected("token names no user (preferred_username or sub)")

    def _single_key(self) -> jwt.PyJWK:
        if len(self.keys.keys) != 1:
            raise TokenRejected("token has no kid and the issuer has several keys")
        return self.keys.keys[0]
