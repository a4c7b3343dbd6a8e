"""The clinic: an HTTP API over what the pipeline stores, scoped to each clinician's care units.

Accounts, sessions and roles (:mod:`clinic._auth`, :mod:`clinic._sessions`), the caller's
scope (:mod:`clinic._scope`), SQL reads (:mod:`clinic._queries`), the FastAPI app
(:func:`create_app`) and its server (:func:`serve`), the acknowledge path shared with the
CLI, webhooks (subscriptions and the dispatcher) and the FHIR export. See docs/CLINIC.md.
"""

from __future__ import annotations

from ._api import API_PREFIX, create_app, openapi_document
from ._auth import LoginThrottle, hash_password, verify_password
from ._errors import ApiError, NotFound
from ._fhir_export import fhir_context, patient_bundle, patient_scopes
from ._oidc import OidcVerifier
from ._publisher import AlertPublisher, alert_for_operator, clinician_action, clinician_event
from ._scope import Caller, CareScope
from ._server import serve
from ._webhooks_dispatch import run_dispatcher
from ._webhooks_store import (
    add_subscription,
    disable_subscription,
    list_deliveries,
    list_subscriptions,
)

__all__ = [
    "API_PREFIX",
    "AlertPublisher",
    "ApiError",
    "Caller",
    "CareScope",
    "LoginThrottle",
    "NotFound",
    "OidcVerifier",
    "add_subscription",
    "alert_for_operator",
    "clinician_action",
    "clinician_event",
    "create_app",
    "disable_subscription",
    "fhir_context",
    "hash_password",
    "list_deliveries",
    "list_subscriptions",
    "openapi_document",
    "patient_bundle",
    "patient_scopes",
    "run_dispatcher",
    "serve",
    "verify_password",
]
