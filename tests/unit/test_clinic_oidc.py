"""OIDC bearer tokens: only the configured issuer's keys, audience and unexpired tokens."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from clinic import OidcVerifier
from clinic._oidc import TokenRejected
from veille.errors import ConfigurationError
from veille.settings import Settings

ISSUER, AUDIENCE = "https://idp.example/realms/chu", "veille-clinic"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def verifier(key: rsa.RSAPrivateKey, tmp_path: Path) -> OidcVerifier:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}))
    settings = Settings(clinic_oidc_issuer=ISSUER, clinic_oidc_audience=AUDIENCE,
                        clinic_oidc_jwks_path=str(path), clinic_oidc_tenant="chu")  # fmt: skip
    found = OidcVerifier.from_settings(settings)
    assert found is not None
    return found


def _token(key: object, kid: str = "k1", algorithm: str = "RS256", **claims: object) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u-1", "preferred_username": "n.martin",
               "iat": now, "exp": now + 300, **claims}  # fmt: skip
    return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid})  # type: ignore[arg-type]


def test_a_valid_token_names_its_user(verifier: OidcVerifier, key: rsa.RSAPrivateKey) -> None:
    assert verifier.username(_token(key)) == "n.martin"
    assert verifier.username(_token(key, preferred_username=None)) == "u-1"


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"aud": "other"}, "audience"),
        ({"iss": "https://evil.example"}, "issuer"),
        ({"exp": int(time.time()) - 3600}, "expired"),
    ],
)
def test_wrong_claims_are_rejected(verifier: OidcVerifier, key: rsa.RSAPrivateKey,
                                   claims: dict[str, object], why: str) -> None:  # fmt: skip
    with pytest.raises(TokenRejected, match=f"(?i){why}"):
        verifier.username(_token(key, **claims))


def test_other_keys_and_shared_secrets_are_rejected(verifier: OidcVerifier) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(TokenRejected, match="[Ss]ignature"):
        verifier.username(_token(stranger))
    with pytest.raises(TokenRejected, match="unknown key"):
        verifier.username(_token(stranger, kid="k9"))
    with pytest.raises(TokenRejected):
        verifier.username(_token("a-shared-secret-of-at-least-32-bytes!", algorithm="HS256"))


def test_no_issuer_means_no_oidc_and_a_partial_configuration_is_an_error() -> None:
    assert OidcVerifier.from_settings(Settings()) is None
    with pytest.raises(ConfigurationError, match="VEILLE_CLINIC_OIDC_AUDIENCE"):
        OidcVerifier.from_settings(Settings(clinic_oidc_issuer=ISSUER))
