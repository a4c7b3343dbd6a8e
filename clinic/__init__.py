"""The clinic: an HTTP API over what the pipeline stores, scoped to each clinician's care units.

Accounts, sessions and roles (:mod:`clinic._auth`, :mod:`clinic._sessions`), the caller's
scope (:mod:`clinic._scope`), SQL reads (:mod:`clinic._queries`), the FastAPI app
(:func:`create_app`) and its server (:func:`serve`). See docs/CLINIC.md.
"""

from __future__ import annotations

from ._api import API_PREFIX, create_app, openapi_document
from ._auth import LoginThrottle, hash_password, verify_password
from ._errors import ApiError, NotFound
from ._oidc import OidcVerifier
from ._publisher import AlertPublisher, alert_for_operator, clinician_action, clinician_event
from ._scope import Caller, CareScope
from ._server import serve

__all__ = [
    "API_PREFIX",
    "AlertPublisher",
    "ApiError",
    "Caller",
    "CareScope",
    "LoginThrottle",
    "NotFound",
    "OidcVerifier",
    "alert_for_operator",
    "clinician_action",
    "clinician_event",
    "create_app",
    "hash_password",
    "openapi_document",
    "serve",
    "verify_password",
]
