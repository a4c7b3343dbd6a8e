"""Runtime settings, read once from ``VEILLE_`` environment variables (or ``.veille/stack.env``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "TopicNames"]

DEFAULT_PARTITIONS = 12  # ARCHITECTURE.md: 12 locally, 48+ in production


class TopicNames(BaseSettings):
    """Kafka topic names; every topic is created explicitly by the stack or by ops."""

    model_config = SettingsConfigDict(env_prefix="VEILLE_TOPIC_", frozen=True, extra="ignore")

    raw: str = Field("veille.readings.raw", description="VEILLE_TOPIC_RAW, key = device id")
    readings: str = Field("veille.readings", description="VEILLE_TOPIC_READINGS, key = patient")
    dead_letters: str = Field("veille.readings.dlq", description="VEILLE_TOPIC_DEAD_LETTERS")
    alerts: str = Field("veille.alerts", description="VEILLE_TOPIC_ALERTS, key = patient")

    def all(self) -> tuple[str, ...]:
        return (self.raw, self.readings, self.dead_letters, self.alerts)


class Settings(BaseSettings):
    """Connection and tuning settings shared by the gateway, the worker and the sink."""

    # Environment variables win; .veille/stack.env (written by `veille stack up`) fills in the
    # rest, so commands run from a checkout find the local stack without sourcing anything.
    model_config = SettingsConfigDict(
        env_prefix="VEILLE_", frozen=True, extra="ignore", env_file=".veille/stack.env"
    )

    mqtt_url: str = Field(
        "mqtt://127.0.0.1:1883", description="VEILLE_MQTT_URL, mqtt://[user:pass@]host:port"
    )
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="VEILLE_KAFKA_BOOTSTRAP, comma-separated host:port"
    )
    database_url: SecretStr = Field(
        SecretStr("postgresql://veille@127.0.0.1:5432/veille"),
        description="VEILLE_DATABASE_URL, libpq URL of the TimescaleDB/PostgreSQL database",
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
        5, ge=0, description="VEILLE_GATEWAY_LINGER_MS, wait to group messages into one record"
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
        description="VEILLE_WORKER_MAX_UNCONFIRMED, events a worker may have processed while "
        "Kafka has not yet confirmed their outputs (their offsets wait; bounds its memory)",
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
    topics: TopicNames = Field(default_factory=TopicNames)
