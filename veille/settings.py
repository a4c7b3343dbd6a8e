"""Every ``VEILLE_`` variable, in one place: one :class:`Settings` with nested parts.

The front door (``veille.cli.main``) builds ``Settings()`` once per process and hands it, or
the part a component needs (``settings.topics``, ``settings.fhir``, ``settings.webhooks``),
down; library modules take settings as arguments and never build their own. Environment
variables win; ``stack.env`` in the state directory (written by ``veille stack up``) fills in
the rest, so commands run from a checkout find the local stack without sourcing anything.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

__all__ = [
    "DEFAULT_STATE_DIR",
    "DatabaseComponent",
    "ENV_FILE_NAME",
    "FhirSettings",
    "Settings",
    "TopicNames",
    "WebhookSettings",
    "env_file_path",
]

DEFAULT_PARTITIONS = 12  # ARCHITECTURE.md: 12 locally, 48+ in production
DEFAULT_STATE_DIR = ".veille"  # relative: a checkout keeps its own local stack
ENV_FILE_NAME = "stack.env"  # written by `veille stack up` into the state directory
STATE_DIR_VARIABLE = "VEILLE_STATE_DIR"

# The components that connect to the database with a role of their own (docs/SECURITY.md).
DatabaseComponent = Literal["sink", "worker", "registry", "clinic"]


def env_file_path() -> Path:
    """``$VEILLE_STATE_DIR/stack.env`` (default ``.veille/stack.env``).

    The state directory is taken from the process environment only: the file lives inside
    it, so the file cannot say where it is (a ``VEILLE_STATE_DIR`` line in it is ignored).
    """
    return Path(os.environ.get(STATE_DIR_VARIABLE, DEFAULT_STATE_DIR)) / ENV_FILE_NAME


class _StackEnvFile(DotEnvSettingsSource):
    """The state directory's ``stack.env``, less any state-directory line (see above)."""

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        values.pop("state_dir", None)
        return values


class _VeilleSettings(BaseSettings):
    """Environment first, then the state directory's ``stack.env``, for every part alike."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        stack_env = _StackEnvFile(settings_cls, env_file=env_file_path())
        return init_settings, env_settings, stack_env, file_secret_settings


class TopicNames(_VeilleSettings):
    """Kafka topic names (``VEILLE_TOPIC_*``); every topic is created explicitly by the stack
    or by ops."""

    model_config = SettingsConfigDict(env_prefix="VEILLE_TOPIC_", frozen=True, extra="ignore")

    raw: str = Field("veille.readings.raw", description="VEILLE_TOPIC_RAW, packed")
    readings: str = Field("veille.readings", description="VEILLE_TOPIC_READINGS, packed")
    dead_letters: str = Field("veille.readings.dlq", description="VEILLE_TOPIC_DEAD_LETTERS")
    alerts: str = Field("veille.alerts", description="VEILLE_TOPIC_ALERTS, key = patient")

    def all(self) -> tuple[str, ...]:
        return (self.raw, self.readings, self.dead_letters, self.alerts)


class FhirSettings(_VeilleSettings):
    """Where exported FHIR references point (``VEILLE_FHIR_*``)."""

    model_config = SettingsConfigDict(env_prefix="VEILLE_FHIR_", frozen=True, extra="ignore")

    base: str = Field(
        "https://veille.invalid/fhir",  # clinic._fhir.DEFAULT_FHIR_BASE (a test keeps them equal)
        description="VEILLE_FHIR_BASE, this deployment's FHIR base URL: fullUrls, identifier "
        "and code systems are built under it",
    )


class WebhookSettings(_VeilleSettings):
    """How the webhook dispatcher delivers: timeouts, retries, concurrency
    (``VEILLE_WEBHOOK_*``)."""

    model_config = SettingsConfigDict(env_prefix="VEILLE_WEBHOOK_", frozen=True, extra="ignore")

    timeout_s: float = Field(
        10.0, gt=0, description="VEILLE_WEBHOOK_TIMEOUT_S, per HTTP request (connect to last byte)"
    )
    max_attempts: int = Field(
        8, ge=1, description="VEILLE_WEBHOOK_MAX_ATTEMPTS, then the delivery is marked failed"
    )
    max_age_s: float = Field(
        3600.0,
        gt=0,
        description="VEILLE_WEBHOOK_MAX_AGE_S, an event older than this is no longer news to a "
        "pager: retries stop, and older events read from Kafka are not queued",
    )
    backoff_base_s: float = Field(
        2.0, gt=0, description="VEILLE_WEBHOOK_BACKOFF_BASE_S, delay before the first retry"
    )
    backoff_max_s: float = Field(
        300.0, gt=0, description="VEILLE_WEBHOOK_BACKOFF_MAX_S, the longest delay between tries"
    )
    concurrency: int = Field(
        16, ge=1, description="VEILLE_WEBHOOK_CONCURRENCY, requests in flight at most"
    )
    poll_s: float = Field(
        1.0, gt=0, description="VEILLE_WEBHOOK_POLL_S, how often due retries are looked for"
    )


class Settings(_VeilleSettings):
    """Every component's settings (``VEILLE_*``), with the topic, FHIR and webhook parts."""

    model_config = SettingsConfigDict(env_prefix="VEILLE_", frozen=True, extra="ignore")

    state_dir: Path = Field(
        Path(DEFAULT_STATE_DIR),
        description="VEILLE_STATE_DIR, where `veille stack` and `veille demo` keep the local "
        "stack; its stack.env fills in every setting the environment leaves unset (the "
        "directory itself comes from the environment only, relative to the working directory "
        "when relative)",
    )

    env: Literal["development", "production"] = Field(
        "development",
        description="VEILLE_ENV, `production` makes every long-running component (gateway, "
        "worker, sink, clinic, webhooks run) refuse to start while a `veille doctor` check "
        "fails",
    )
    mqtt_url: SecretStr = Field(
        SecretStr("mqtts://127.0.0.1:8883"),
        description="VEILLE_MQTT_URL, mqtts://USER:PASSWORD@HOST:PORT: the broker and this "
        "component's own account (the gateway's: subscribe to readings, publish nothing)",
    )
    mqtt_admin_url: SecretStr | None = Field(
        None,
        description="VEILLE_MQTT_ADMIN_URL, the broker's dynamic-security admin account "
        "(mqtts://USER:PASSWORD@HOST:PORT): `veille devices add | revoke | rotate | import` "
        "create and remove device accounts with it",
    )
    mqtt_simulator_url: SecretStr | None = Field(
        None,
        description="VEILLE_MQTT_SIMULATOR_URL, the simulated fleet's account (may publish "
        "any device's readings): `veille simulate`, `replay`, the demo, the bench and the "
        "tests; a production broker has no such account",
    )
    mqtt_ca_file: Path | None = Field(
        None,
        description="VEILLE_MQTT_CA_FILE, the CA bundle (PEM) a client verifies the broker's "
        "certificate with: the hospital's in production, `veille certs`' ca.pem locally",
    )
    mqtt_client_cert_file: Path | None = Field(
        None,
        description="VEILLE_MQTT_CLIENT_CERT_FILE, a client certificate (PEM) for mutual TLS, "
        "with VEILLE_MQTT_CLIENT_KEY_FILE",
    )
    mqtt_client_key_file: Path | None = Field(
        None,
        description="VEILLE_MQTT_CLIENT_KEY_FILE, the client certificate's private key (PEM, "
        "readable by its owner only)",
    )
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="VEILLE_KAFKA_BOOTSTRAP, comma-separated host:port"
    )
    kafka_produce_timeout_s: float = Field(
        15.0,
        gt=0,
        description="VEILLE_KAFKA_PRODUCE_TIMEOUT_S, a produce request unanswered this long has "
        "failed and is sent again (gateway and workers; Faust's own default is 20 minutes)",
    )
    database_url: SecretStr = Field(
        SecretStr("postgresql://veille@127.0.0.1:5432/veille"),
        description="VEILLE_DATABASE_URL, libpq URL of the TimescaleDB/PostgreSQL database as "
        "the role that owns the schema: `veille migrate`, `veille backup`; any component "
        "without its own URL below falls back to it",
    )
    sink_database_url: SecretStr | None = Field(
        None,
        description="VEILLE_SINK_DATABASE_URL, `veille sink` as role veille_sink (inserts "
        "readings, alerts, dead letters; reads no identity)",
    )
    worker_database_url: SecretStr | None = Field(
        None,
        description="VEILLE_WORKER_DATABASE_URL, `veille worker` as role veille_worker (reads "
        "the registry and the thresholds)",
    )
    registry_database_url: SecretStr | None = Field(
        None,
        description="VEILLE_REGISTRY_DATABASE_URL, the operator's commands (`veille devices`, "
        "`users`, `thresholds`, `webhooks`, `alerts`, `fhir`, `simulate`) and the webhook "
        "dispatcher as role veille_registry (every tenant; identities written, never read)",
    )
    clinic_database_url: SecretStr | None = Field(
        None,
        description="VEILLE_CLINIC_DATABASE_URL, `veille clinic` as role veille_clinic (patient "
        "data through row-level security, scoped per request to the caller's care units)",
    )
    backup_config: Path | None = Field(
        None,
        description="VEILLE_BACKUP_CONFIG, pgBackRest's configuration file (repository, "
        "cipher type, pg1-path): `veille backup`, `veille restore`; the local stack writes "
        "its own and sets it in stack.env",
    )
    backup_stanza: str = Field(
        "veille", description="VEILLE_BACKUP_STANZA, the pgBackRest stanza of the database"
    )
    backup_cipher_pass: SecretStr | None = Field(
        None,
        description="VEILLE_BACKUP_CIPHER_PASS, the repository's encryption key, from a "
        "secret store (never in the repository or beside it); overrides repo1-cipher-pass",
    )
    backup_database_url: SecretStr | None = Field(
        None,
        description="VEILLE_BACKUP_DATABASE_URL, the application database as a superuser (it "
        "creates the restore point after each `veille backup` and reads every table there); "
        "default VEILLE_DATABASE_URL",
    )
    backup_records_dir: Path | None = Field(
        None,
        description="VEILLE_BACKUP_RECORDS_DIR, where `veille backup` keeps each backup's "
        "restore point and digests for `veille backup verify` (default STATE_DIR/backups)",
    )
    partitions: int = Field(
        DEFAULT_PARTITIONS, ge=1, description="VEILLE_PARTITIONS, per topic when creating topics"
    )
    kafka_local_broker: bool = Field(
        False,
        description="VEILLE_KAFKA_LOCAL_BROKER, true when the broker is the embedded Tansu "
        "(turns on its client-side workarounds)",
    )
    pseudonym_key: SecretStr = Field(
        SecretStr("veille-local-development-key"),
        description="VEILLE_PSEUDONYM_KEY, HMAC key turning national ids into patient pseudonyms",
    )
    gateway_id: str = Field(
        "gw-1", description="VEILLE_GATEWAY_ID, stable per gateway: it is the MQTT session id"
    )
    gateway_subscription: Literal["plain", "shared"] = Field(
        "plain",
        description="VEILLE_GATEWAY_SUBSCRIPTION, `plain` (one gateway: an ordinary subscription, "
        "which Mosquitto restores after a restart) or `shared` ($share/veille-gateways/..., "
        "several gateways side by side; Mosquitto 2.0 does not restore it after a restart)",
    )
    gateway_linger_ms: int = Field(
        40,
        ge=0,
        description="VEILLE_GATEWAY_LINGER_MS, wait to group messages into one record per raw "
        "partition (MQTT acknowledgements wait for it); fewer, larger records cost every stage "
        "and the broker less: at 7,530 msg/s 5 ms gave 56 bursts a second of 135 messages",
    )
    gateway_max_inflight: int = Field(
        1000,
        ge=1,
        description="VEILLE_GATEWAY_MAX_INFLIGHT, MQTT receive maximum: unacknowledged messages "
        "the broker may hand the gateway (bounds its memory)",
    )
    mqtt_session_expiry_s: int = Field(
        86_400,
        ge=0,
        description="VEILLE_MQTT_SESSION_EXPIRY_S, how long the broker keeps a gone gateway's "
        "unacknowledged messages for it",
    )
    worker_role: Literal["validate", "detect", "all"] = Field(
        "all",
        description="VEILLE_WORKER_ROLE: validate (raw -> readings, no table), detect (readings "
        "-> alerts, per-patient table) or all (one child process of each); separate roles keep "
        "Faust's table recovery out of the path that carries readings to the database "
        "(docs/RELIABILITY.md)",
    )
    worker_max_unconfirmed: int = Field(
        500,
        ge=1,
        description="VEILLE_WORKER_MAX_UNCONFIRMED, event groups a worker may have processed while "
        "Kafka has not yet confirmed their outputs (their offsets wait; bounds its memory)",
    )
    worker_group_ms: int = Field(
        20,
        ge=0,
        description="VEILLE_WORKER_GROUP_MS, how long a worker gathers input records before "
        "writing one record per partition for them all (packs Kafka records)",
    )
    worker_group_max: int = Field(
        500, ge=1, description="VEILLE_WORKER_GROUP_MAX, input records in one group at most"
    )
    detector_state_flush_ms: int = Field(
        5000,
        ge=0,
        description="VEILLE_DETECTOR_STATE_FLUSH_MS, how often the detector writes the patient "
        "states its groups changed to its table and changelog, each once (0: at every group); "
        "a group's input is acked after that write, so a killed detector reads up to this "
        "much input again (streams/_state_writes.py). Its groups wait meanwhile: keep "
        "VEILLE_WORKER_MAX_UNCONFIRMED above this / VEILLE_WORKER_GROUP_MS",
    )
    worker_stream_buffer_max: int = Field(
        4096,
        ge=1,
        description="VEILLE_WORKER_STREAM_BUFFER_MAX, events a worker buffers per partition "
        "ahead of its agent (Faust's stream_buffer_maxsize): what a worker that falls behind "
        "holds in memory, besides aiokafka's fetch buffers (docs/OPERATIONS.md, Sizing)",
    )
    worker_fetch_max_wait_ms: int = Field(
        250,
        ge=1,
        le=60_000,
        description="VEILLE_WORKER_FETCH_MAX_WAIT_MS, how long a worker's fetch may wait on the "
        "broker (Faust writes 1,500 ms into its consumer; this replaces it). Kafka answers as "
        "soon as a record is there, so it bounds only idle polling; the embedded Tansu may "
        "wait up to this long before answering, records or not, and each worker hop of an "
        "alert with it (docs/LOCAL_STACK.md)",
    )
    worker_web_port: int = Field(
        6066, description="VEILLE_WORKER_WEB_PORT, Faust's web port, distinct per worker"
    )
    worker_data_dir: str = Field(
        ".veille/faust", description="VEILLE_WORKER_DATA_DIR, Faust's local state directory"
    )
    broker_session_timeout_s: float = Field(
        6.0,
        gt=0,
        description="VEILLE_BROKER_SESSION_TIMEOUT_S; Tansu holds group joins for half of it",
    )
    sink_batch_max: int = Field(
        5000, ge=1, description="VEILLE_SINK_BATCH_MAX, records per database transaction"
    )
    sink_fetch_max_wait_ms: int = Field(
        250,
        ge=1,
        le=60_000,
        description="VEILLE_SINK_FETCH_MAX_WAIT_MS, how long the sink's fetch may wait on the "
        "broker (aiokafka's fetch_max_wait_ms); on the embedded Tansu each fetch answers after "
        "up to this long, records or not (docs/LOCAL_STACK.md)",
    )
    sink_alerts_fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        le=60_000,
        description="VEILLE_SINK_ALERTS_FETCH_MAX_WAIT_MS, the same for the sink's alert lane "
        "(its own consumer group, veille-sink-alerts): alert events land without waiting "
        "behind readings; on the embedded Tansu a hop takes up to half the wait, and each "
        "idle fetch costs the broker CPU (30 ms: 58 ms of CPU a second idle, 100 ms: 23)",
    )
    future_tolerance_s: float = Field(
        300.0, ge=0, description="VEILLE_FUTURE_TOLERANCE_S, device clock skew accepted"
    )
    max_age_s: float = Field(
        7 * 86_400.0,
        gt=0,
        description="VEILLE_MAX_AGE_S, readings measured longer ago are dead-lettered",
    )
    escalate_after_s: float = Field(
        300.0,
        gt=0,
        description="VEILLE_ESCALATE_AFTER_S, an open alert nobody acknowledged is escalated "
        "(priority raised) after this long, twice at most",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="VEILLE_METRICS_HOST, address of the component's /metrics, /healthz and "
        "/readyz (0.0.0.0 in a container, so Prometheus and the probes reach it)",
    )
    metrics_port: int = Field(
        9400,
        ge=0,
        le=65535,
        description="VEILLE_METRICS_PORT, port of /metrics, /healthz and /readyz; 0 turns the "
        "endpoint off (two components on one host need two ports)",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="VEILLE_LOG_FORMAT, `text` for a terminal or `json` (one object a line, "
        "with component, event and correlation id) for a log collector",
    )
    clinic_host: str = Field("127.0.0.1", description="VEILLE_CLINIC_HOST, the API's address")
    clinic_port: int = Field(8080, ge=0, le=65535, description="VEILLE_CLINIC_PORT")
    clinic_session_s: int = Field(
        8 * 3600, ge=60, description="VEILLE_CLINIC_SESSION_S, a login lasts one shift (8 h)"
    )
    clinic_cookie_secure: bool = Field(
        True,
        description="VEILLE_CLINIC_COOKIE_SECURE, send the session cookie over HTTPS only "
        "(browsers also accept it on http://localhost)",
    )
    clinic_oidc_issuer: str | None = Field(
        None, description="VEILLE_CLINIC_OIDC_ISSUER, accept JWTs of this identity provider"
    )
    clinic_oidc_audience: str | None = Field(
        None, description="VEILLE_CLINIC_OIDC_AUDIENCE, the aud claim tokens must carry"
    )
    clinic_oidc_jwks_path: str | None = Field(
        None, description="VEILLE_CLINIC_OIDC_JWKS_PATH, the issuer's signing keys (JWKS file)"
    )
    clinic_oidc_tenant: str | None = Field(
        None, description="VEILLE_CLINIC_OIDC_TENANT, the establishment the issuer's users are in"
    )
    grant_max_days: float = Field(
        30.0,
        gt=0,
        le=365,
        description="VEILLE_GRANT_MAX_DAYS, the longest a GHT sharing grant may last "
        "(`veille grants add`); a longer care is granted again",
    )
    topics: TopicNames = Field(
        default_factory=TopicNames, description="VEILLE_TOPIC_*, the Kafka topic names"
    )
    fhir: FhirSettings = Field(
        default_factory=FhirSettings, description="VEILLE_FHIR_*, the FHIR export"
    )
    webhooks: WebhookSettings = Field(
        default_factory=WebhookSettings, description="VEILLE_WEBHOOK_*, the webhook dispatcher"
    )

    def database_url_for(self, component: DatabaseComponent) -> SecretStr:
        """The component's own URL (its own role), else ``VEILLE_DATABASE_URL``: a deployment
        with one role for everything keeps working, with the privileges it had."""
        own = {
            "sink": self.sink_database_url,
            "worker": self.worker_database_url,
            "registry": self.registry_database_url,
            "clinic": self.clinic_database_url,
        }[component]
        return own if own is not None else self.database_url
