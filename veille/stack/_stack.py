"""``veille stack up | down | status | env``: the embedded local stack, by PID, in ``.veille/``.

Services: Tansu (Kafka protocol), Mosquitto (MQTT), PostgreSQL (TimescaleDB when installed),
and with ``--monitoring`` Prometheus (``_prometheus.py``), which stays part of the stack until
``down``.
``up`` reuses healthy services, restarts dead ones (and says so), creates every topic with
an explicit partition count, creates one database role per component (generated passwords,
kept in ``stack.json``), runs the migrations as the owner and writes ``stack.env`` with one
database URL per role.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow
from pydantic import SecretStr

from ingest import MqttEndpoint
from store import ROLE_NAMES, SchemaInfo, migrate
from veille.errors import StackError
from veille.security import (
    CERTS_DIR_NAME,
    GATEWAY_ACCOUNT,
    SIMULATOR_ACCOUNT,
    BrokerAdmin,
    CertificateFiles,
    ensure_certificates,
    write_private_file,
)
from veille.settings import Settings, TopicNames

from ._kafka_admin import create_topics
from ._mosquitto import DYNSEC_FILE, init_dynamic_security, start_mosquitto
from ._postgres import (
    APP_DATABASE,
    APP_USER,
    AUDIT_ROLE_SETTINGS,
    AUDITED_ROLES,
    PostgresCluster,
    audit_settings,
)
from ._process import ProcessHandle, free_port, port_open, stop, wait_until
from ._prometheus import PROMETHEUS_DIR, start_prometheus, write_config
from ._tansu import start_tansu

__all__ = ["DATABASE_URL_VARIABLES", "LocalStack", "ServiceStatus"]

SERVICES = ("kafka", "mqtt", "postgres")
MONITORING = "prometheus"  # the optional service: started by `up --monitoring`
# `--monitoring-fast-rules`: every `for:` of the rules divided by 60 (1m -> 1s), for tests.
FAST_RULES_FACTOR = 60
FOR_SCALE = "prometheus_for_scale"  # in stack.json: the factor the running Prometheus uses
MQTT_ADMIN_ACCOUNT = "veille-admin"
# One generated password per broker account, kept in stack.json (0600).
MQTT_PASSWORDS = {
    MQTT_ADMIN_ACCOUNT: "mqtt_admin_password",
    GATEWAY_ACCOUNT: "mqtt_gateway_password",
    SIMULATOR_ACCOUNT: "mqtt_simulator_password",
}
START_TIMEOUT_S = 30.0
RECOVERY_TIMEOUT_S = 900.0  # a restored cluster replays the WAL archived since its backup
# The note `stack up` suggests for `veille alerts resolve-all` when Tansu started empty.
LOST_KAFKA_REASON = "local Kafka (memory-only Tansu) restarted empty"
# component -> its database URL in stack.env (veille.settings: <component>_database_url)
DATABASE_URL_VARIABLES = {c: f"VEILLE_{c.upper()}_DATABASE_URL" for c in ROLE_NAMES}
DB_ROLE_PASSWORDS = "database_role_passwords"  # in stack.json: role -> generated password
# pgBackRest's repository key, in stack.json only: not in its configuration file, not in
# the repository (production: VEILLE_BACKUP_CIPHER_PASS from a secret store).
BACKUP_CIPHER_PASS = "backup_cipher_pass"  # noqa: S105 - a stack.json field


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    name: str
    pid: int | None
    port: int | None
    state: str  # running | dead | stopped

    def line(self) -> str:
        return f"{self.name:<9} {self.state:<8} pid={self.pid or '-':<8} port={self.port or '-'}"


class LocalStack:
    """The services of one state directory (default ``.veille``)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        partitions: int = 12,
        topics: TopicNames | None = None,
        monitoring: bool = False,
        fast_rules: bool = False,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.partitions = partitions
        # Prometheus: started by up() when asked, or kept when a previous up() started it.
        self.monitoring = monitoring or fast_rules
        self.fast_rules = fast_rules
        # The front door passes settings.topics; the default reads them as Settings would.
        self.topics = topics if topics is not None else TopicNames()

    # -- files ---------------------------------------------------------------------------
    @property
    def _state_file(self) -> Path:
        return self.state_dir / "stack.json"

    @property
    def env_file(self) -> Path:
        return self.state_dir / "stack.env"

    @property
    def certificates(self) -> CertificateFiles:
        """``veille certs``' files: the broker's TLS certificate and the CA clients verify."""
        return CertificateFiles(self.state_dir / CERTS_DIR_NAME)

    def broker_endpoint(self, account: str) -> MqttEndpoint:
        """The local broker reached as one of the stack's accounts (TLS, CA verified)."""
        env = self.env()
        url = {
            GATEWAY_ACCOUNT: env["VEILLE_MQTT_URL"],
            MQTT_ADMIN_ACCOUNT: env["VEILLE_MQTT_ADMIN_URL"],
            SIMULATOR_ACCOUNT: env["VEILLE_MQTT_SIMULATOR_URL"],
        }[account]
        return MqttEndpoint.parse(url, ca_file=self.certificates.ca_cert)

    def _load(self) -> dict[str, Any]:
        if not self._state_file.exists():
            return {"services": {}}
        loaded: dict[str, Any] = json.loads(self._state_file.read_text())
        return loaded

    def _save(self, state: dict[str, Any]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.chmod(0o600)  # holds database passwords
        tmp.replace(self._state_file)

    # -- queries -------------------------------------------------------------------------
    def _service_names(self, services: dict[str, Any]) -> tuple[str, ...]:
        wanted = self.monitoring or MONITORING in services
        return (*SERVICES, MONITORING) if wanted else SERVICES

    def prometheus_url(self) -> str | None:
        """The local Prometheus's address (its API and UI), when ``--monitoring`` started it."""
        rec = self._load()["services"].get(MONITORING)
        return f"http://127.0.0.1:{rec['port']}" if rec else None

    def status(self) -> list[ServiceStatus]:
        services = self._load()["services"]
        out = []
        for name in self._service_names(services):
            rec = services.get(name)
            if rec is None:
                out.append(ServiceStatus(name, None, None, "stopped"))
                continue
            alive = ProcessHandle.from_json(rec).alive()
            out.append(ServiceStatus(name, rec["pid"], rec["port"], "running" if alive else "dead"))
        return out

    def env(self) -> dict[str, str]:
        state = self._load()
        services = state["services"]
        if not all(name in services for name in SERVICES):
            raise StackError(f"no stack in {self.state_dir}; run `veille stack up`")
        mqtt_port = services["mqtt"]["port"]

        def mqtt_url(account: str) -> str:
            return f"mqtts://{account}:{state[MQTT_PASSWORDS[account]]}@127.0.0.1:{mqtt_port}"

        def database_url(role: str, password: str) -> str:
            return (
                f"postgresql://{role}:{password}@127.0.0.1:{services['postgres']['port']}/"
                f"{APP_DATABASE}"
            )

        # A state from before per-component roles has none until the next `up` creates them;
        # meanwhile every component falls back to VEILLE_DATABASE_URL.
        role_passwords: dict[str, str] = state.get(DB_ROLE_PASSWORDS, {})
        role_urls = {
            variable: database_url(ROLE_NAMES[component], role_passwords[ROLE_NAMES[component]])
            for component, variable in DATABASE_URL_VARIABLES.items()
            if ROLE_NAMES[component] in role_passwords
        }
        return {
            "VEILLE_MQTT_URL": mqtt_url(GATEWAY_ACCOUNT),
            "VEILLE_MQTT_ADMIN_URL": mqtt_url(MQTT_ADMIN_ACCOUNT),
            "VEILLE_MQTT_SIMULATOR_URL": mqtt_url(SIMULATOR_ACCOUNT),
            "VEILLE_MQTT_CA_FILE": str(self.certificates.ca_cert),
            "VEILLE_KAFKA_BOOTSTRAP": f"127.0.0.1:{services['kafka']['port']}",
            "VEILLE_DATABASE_URL": database_url(APP_USER, state["app_password"]),
            **role_urls,
            **self._backup_env(state),
            "VEILLE_KAFKA_LOCAL_BROKER": "true",
            "VEILLE_PARTITIONS": str(self.partitions),
        }

    def settings_for(self, base: Settings) -> Settings:
        """``base`` (the process's settings) pointed at this stack: its brokers, one database
        URL per component, its backup repository; everything else as ``base`` has it."""
        env = self.env()
        update: dict[str, Any] = {
            "mqtt_url": SecretStr(env["VEILLE_MQTT_URL"]),
            "mqtt_admin_url": SecretStr(env["VEILLE_MQTT_ADMIN_URL"]),
            "mqtt_simulator_url": SecretStr(env["VEILLE_MQTT_SIMULATOR_URL"]),
            "mqtt_ca_file": Path(env["VEILLE_MQTT_CA_FILE"]),
            "kafka_bootstrap": env["VEILLE_KAFKA_BOOTSTRAP"],
            "database_url": SecretStr(env["VEILLE_DATABASE_URL"]),
            "kafka_local_broker": True,
        }
        for component, variable in DATABASE_URL_VARIABLES.items():
            if variable in env:
                update[f"{component}_database_url"] = SecretStr(env[variable])
        if "VEILLE_BACKUP_CONFIG" in env:
            update["backup_config"] = Path(env["VEILLE_BACKUP_CONFIG"])
            update["backup_database_url"] = SecretStr(env["VEILLE_BACKUP_DATABASE_URL"])
            update["backup_cipher_pass"] = SecretStr(env["VEILLE_BACKUP_CIPHER_PASS"])
        return base.model_copy(update=update)

    def _backup_env(self, state: dict[str, Any]) -> dict[str, str]:
        if BACKUP_CIPHER_PASS not in state:  # a state from before WAL archiving
            return {}
        files = PostgresCluster.for_state_dir(self.state_dir).backup_files
        port = state["services"]["postgres"]["port"]
        superuser = f"postgresql://postgres:{state['superuser_password']}@127.0.0.1:{port}/"
        return {
            "VEILLE_BACKUP_CONFIG": str(files.config),
            # Creating a restore point is a superuser's right; a GRANT of it in the database
            # would be dumped by `veille backup export` and refused at import.
            "VEILLE_BACKUP_DATABASE_URL": superuser + APP_DATABASE,
            "VEILLE_BACKUP_CIPHER_PASS": state[BACKUP_CIPHER_PASS],
        }

    # -- lifecycle -----------------------------------------------------------------------
    def up(self) -> list[str]:
        """Start what is not running; returns what was done, one line each."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state = self._load()
        services: dict[str, Any] = state.setdefault("services", {})
        report: list[str] = []
        kafka_new = False
        for status in self.status():
            kafka_new |= status.name == "kafka" and status.state != "running"
            if status.state == "running":
                report.append(f"{status.name}: reusing pid {status.pid} on port {status.port}")
                if status.name == MONITORING and status.pid:
                    self._write_prometheus_config(state)
                    os.kill(status.pid, signal.SIGHUP)  # Prometheus rereads config and rules
                continue
            if status.state == "dead":
                report.append(f"{status.name}: pid {status.pid} had died; restarting it")
                if status.name == "kafka":
                    report.append("kafka: memory-only broker, its previous records are gone")
            port = self._port_for(status, services)
            handle = self._start(status.name, port, state)
            services[status.name] = {**handle.to_json(), "port": port}
            self._save(state)
            self._wait_ready(status.name, handle, port)
            if status.state != "dead":
                report.append(f"{status.name}: started pid {handle.pid} on port {port}")
        self._save(state)
        info, audited = asyncio.run(self._prepare(state))
        report.append(
            f"kafka: {len(self.topics.all())} topics x {self.partitions} partitions ready"
        )
        report.append(
            f"mqtt: TLS only (CA {self.certificates.ca_cert}), no anonymous client; accounts "
            f"{GATEWAY_ACCOUNT} (subscribe), {SIMULATOR_ACCOUNT} (simulated fleet), "
            f"{MQTT_ADMIN_ACCOUNT} (devices' accounts)"
        )
        report.append(f"postgres: schema v{info.version} ({info.flavour.value}) ready")
        if MONITORING in services:
            scale = state.get(FOR_SCALE, 1)
            report.append(
                f"prometheus: {self.prometheus_url()}, scraping the components listed in "
                f"{self.state_dir / PROMETHEUS_DIR / 'targets.json'}; rules of "
                "deploy/prometheus/rules.yml"
                + (f" with every `for:` divided by {scale}" if scale != 1 else "")
            )
        report.append(
            f"postgres: SQL of {', '.join(AUDITED_ROLES)} logged by pgaudit"
            if audited
            else "warning: pgaudit not installed (Debian postgresql-15-pgaudit; `make "
            "bootstrap`): SQL typed by an operator is not audited"
        )
        if kafka_new and (
            left := asyncio.run(_unresolved_alerts(self.env()["VEILLE_DATABASE_URL"]))
        ):
            report.append(
                f"warning: the database holds {left} open or acknowledged alerts but Kafka "
                "started empty, so the detectors no longer know them and will never resolve "
                "them. Once the sink and worker run: veille alerts resolve-all --reason "
                f"{LOST_KAFKA_REASON!r} --yes (veille demo does it itself)"
            )
        env_text = "".join(f"{k}={v}\n" for k, v in self.env().items())
        write_private_file(self.env_file, env_text.encode(), mode=0o600)  # holds passwords
        return report

    def down(self, *, purge: bool = False) -> list[str]:
        state = self._load()
        report = []
        for name in reversed((*SERVICES, MONITORING)):
            rec = state["services"].pop(name, None)
            if rec is None:
                continue
            handle = ProcessHandle.from_json(rec)
            # PostgreSQL: SIGINT is "fast" shutdown; SIGTERM would wait for clients to leave.
            sig = signal.SIGINT if name == "postgres" else signal.SIGTERM
            was_running = stop(handle, sig=sig)
            report.append(
                f"{name}: {'stopped' if was_running else 'was not running'} (pid {handle.pid})"
            )
        self._save(state)
        self.env_file.unlink(missing_ok=True)
        # The components registered there are gone with the brokers they used.
        (self.state_dir / PROMETHEUS_DIR / "targets.json").unlink(missing_ok=True)
        if purge:
            PostgresCluster.for_state_dir(self.state_dir).purge()
            shutil.rmtree(self.state_dir / "mosquitto", ignore_errors=True)  # accounts, queues
            shutil.rmtree(self.state_dir / PROMETHEUS_DIR, ignore_errors=True)  # its TSDB
            self._state_file.unlink(missing_ok=True)
            report.append("purged database files and stack state")
        return report

    def crash(self, name: str) -> int | None:
        """SIGKILL service ``name`` (a drill's "the server is gone"); its record stays, so
        the next :meth:`up` restarts it as a dead service, on its port. Returns its PID."""
        rec = self._load()["services"].get(name)
        if rec is None:
            return None
        handle = ProcessHandle.from_json(rec)
        stop(handle, sig=signal.SIGKILL, grace_s=10.0)
        return handle.pid

    # -- internals -----------------------------------------------------------------------
    @staticmethod
    def _port_for(status: ServiceStatus, services: dict[str, Any]) -> int:
        """A dead service comes back on its previous port when that port is free, so the
        gateway, workers and sink that were started against it reconnect by themselves."""
        previous = services.get(status.name, {}).get("port")
        if status.state == "dead" and previous and not port_open(previous):
            return int(previous)
        return free_port()

    def _start(self, name: str, port: int, state: dict[str, Any]) -> ProcessHandle:
        if name == "kafka":
            return start_tansu(self.state_dir, port)
        if name == "mqtt":
            return self._start_mosquitto(port, state)
        if name == MONITORING:
            self._write_prometheus_config(state)
            return start_prometheus(self.state_dir, port)
        cluster = PostgresCluster.for_state_dir(self.state_dir)
        if not cluster.initialised():
            state["superuser_password"] = cluster.init()
            state["app_password"] = secrets.token_urlsafe(24)
        cipher_pass = state.setdefault(BACKUP_CIPHER_PASS, secrets.token_urlsafe(48))
        files = cluster.backup_files
        files.write(
            data_dir=cluster.data_dir, port=port, socket_dir=cluster.socket_dir,
            user=cluster.user, password=state["superuser_password"],
        )  # fmt: skip
        return cluster.start(
            port,
            settings={**files.archive_settings(), **audit_settings()},
            env=files.environment(cipher_pass),
        )

    def _write_prometheus_config(self, state: dict[str, Any]) -> None:
        """This up()'s choice of rules (fast or as written), or the running one's when up()
        was not asked for monitoring."""
        if self.monitoring:
            state[FOR_SCALE] = FAST_RULES_FACTOR if self.fast_rules else 1
        write_config(self.state_dir, for_scale=state.get(FOR_SCALE, 1))

    def _start_mosquitto(self, port: int, state: dict[str, Any]) -> ProcessHandle:
        ensure_certificates(self.certificates)
        directory = self.state_dir / "mosquitto"
        admin_field = MQTT_PASSWORDS[MQTT_ADMIN_ACCOUNT]
        if admin_field not in state:
            # No admin password on record (new state, or one from before accounts existed):
            # a plugin file left behind would hold an admin nobody knows; start it afresh.
            (directory / DYNSEC_FILE).unlink(missing_ok=True)
        for field in MQTT_PASSWORDS.values():
            state.setdefault(field, secrets.token_urlsafe(24))
        init_dynamic_security(directory, MQTT_ADMIN_ACCOUNT, state[admin_field])
        return start_mosquitto(directory, port, self.certificates)

    def _wait_ready(self, name: str, handle: ProcessHandle, port: int) -> None:
        def ready() -> bool:
            if not handle.alive():
                log = self.state_dir / f"{'mosquitto/mosquitto' if name == 'mqtt' else name}.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise StackError(f"{name} exited while starting; its log ends with:\n{tail}")
            return port_open(port)

        wait_until(ready, timeout_s=START_TIMEOUT_S, what=f"{name} on port {port}")

    async def _prepare(self, state: dict[str, Any]) -> tuple[SchemaInfo, bool]:
        """Topics, broker accounts, database roles, stanza, migrations; and whether the
        running server audits operators' SQL (pgaudit preloaded)."""
        services = state["services"]
        await create_topics(
            f"127.0.0.1:{services['kafka']['port']}", self.topics.all(), self.partitions
        )
        await asyncio.to_thread(self._ensure_broker_accounts, state)
        port = services["postgres"]["port"]
        admin = f"postgresql://postgres:{state['superuser_password']}@127.0.0.1:{port}/postgres"
        passwords: dict[str, str] = state.setdefault(DB_ROLE_PASSWORDS, {})
        for role in ROLE_NAMES.values():
            passwords.setdefault(role, secrets.token_urlsafe(24))
        self._save(state)
        audited = await _ensure_app_database(admin, state["app_password"], passwords)
        if BACKUP_CIPHER_PASS in state:
            cluster = PostgresCluster.for_state_dir(self.state_dir)
            await asyncio.to_thread(
                cluster.backup_files.create_stanza,
                user=cluster.user, cipher_pass=state[BACKUP_CIPHER_PASS],
            )  # fmt: skip
        return await migrate(self.env()["VEILLE_DATABASE_URL"]), audited

    def _ensure_broker_accounts(self, state: dict[str, Any]) -> None:
        with BrokerAdmin(self.broker_endpoint(MQTT_ADMIN_ACCOUNT)) as admin:
            admin.ensure_service_accounts(
                gateway_password=state[MQTT_PASSWORDS[GATEWAY_ACCOUNT]],
                simulator_password=state[MQTT_PASSWORDS[SIMULATOR_ACCOUNT]],
            )


async def _unresolved_alerts(dsn: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        row = await (
            await conn.execute("SELECT count(*) FROM alerts WHERE state <> 'resolved'")
        ).fetchone()
    return int(row[0]) if row else 0


async def _connect_writable(admin_url: str) -> psycopg.AsyncConnection[TupleRow]:
    """A superuser connection once the server accepts writes: the port opens a moment
    before it accepts logins, and a restored cluster replays WAL (read-only meanwhile) for
    as long as the archive since its backup takes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECOVERY_TIMEOUT_S
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(admin_url, autocommit=True)
        except psycopg.OperationalError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)
            continue
        row = await (await conn.execute("SELECT pg_is_in_recovery()")).fetchone()
        if row is not None and not row[0]:
            return conn
        await conn.close()
        if loop.time() > deadline:
            raise StackError(
                f"PostgreSQL still recovering after {RECOVERY_TIMEOUT_S:.0f} s; see its log"
            )
        await asyncio.sleep(0.2)


async def _ensure_app_database(
    admin_url: str, app_password: str, role_passwords: dict[str, str]
) -> bool:
    """The owner role and its database, and one login role per component (its password set
    again each time, so stack.json stays the truth); the migration grants them their rights.
    Returns whether pgaudit is loaded, in which case it audits :data:`AUDITED_ROLES`."""
    conn = await _connect_writable(admin_url)
    async with conn:
        role = await (
            await conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_USER,))
        ).fetchone()
        if role is None:
            await conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(APP_USER), sql.Literal(app_password)
                )
            )
        for name, password in role_passwords.items():
            exists = await (
                await conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
            ).fetchone()
            statement = (
                sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}")
                if exists
                else sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}")
            )
            await conn.execute(statement.format(sql.Identifier(name), sql.Literal(password)))
        row = await (await conn.execute("SHOW shared_preload_libraries")).fetchone()
        audited = row is not None and "pgaudit" in str(row[0])
        if audited:
            for audited_role in AUDITED_ROLES:
                for name, value in AUDIT_ROLE_SETTINGS.items():
                    await conn.execute(
                        sql.SQL("ALTER ROLE {} SET {} = {}").format(
                            sql.Identifier(audited_role), sql.SQL(name), sql.Literal(value)
                        )
                    )
        db = await (
            await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (APP_DATABASE,))
        ).fetchone()
        if db is None:
            await conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(APP_DATABASE), sql.Identifier(APP_USER)
                )
            )
    return audited
