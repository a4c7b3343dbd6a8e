"""deploy/: the image, the Compose file and the Kubernetes manifests, checked offline.

No Docker engine or Kubernetes cluster runs here, so each file is checked against the schema
or the program that defines it: the Compose specification's JSON schema (the real
``check-jsonschema`` CLI, ``--builtin-schema vendor.compose-spec``), Kubernetes 1.30's
schemas (``kubernetes-validate``, strict: unknown fields fail), KEDA's ScaledObject CRD
(``deploy/schemas/``, with unknown fields refused as ``kubectl --validate=strict`` would),
Veille's own argparse parser for every ``veille`` command line and its Settings for every
``VEILLE_*`` name. The rest are the rules the files promise: non-root, read-only root
filesystems, probes, partitions, network reach, no secret committed. Each schema check is
paired with a broken copy it must reject.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]
from pydantic_settings import BaseSettings

from store import ROLE_NAMES
from streams.runtime import APP_IDS, DETECTOR_STATE_CHANGELOG, SINK_GROUP_ID
from veille.cli import build_parser
from veille.security import Status, run_checks
from veille.settings import Settings, TopicNames

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = DEPLOY / "compose.yaml"
COMPOSE_DIR = DEPLOY / "compose"
ENV_EXAMPLE = COMPOSE_DIR / "env.example"
SECRETS_DIR = COMPOSE_DIR / "secrets"
GENERATE_SECRETS = COMPOSE_DIR / "generate-secrets.sh"
ROLES_SCRIPT = COMPOSE_DIR / "timescaledb" / "50-veille-roles.sh"
K8S = DEPLOY / "k8s"
KUSTOMIZATION = K8S / "kustomization.yaml"
SECRET_TEMPLATES = K8S / "secrets.template.yaml"
KEDA_CRD = DEPLOY / "schemas" / "keda.sh_scaledobjects.crd.yaml"
# deploy/schemas/README.md names this digest: the copy changes only on purpose.
KEDA_CRD_SHA256 = "207afc4ca44fd9e3f4bbfb1c8fae08f3a365e098a52714fe8eb672bbd239cbcd"
KUBERNETES_VERSION = "1.30"  # one of kubernetes-validate's bundled versions: the oldest we aim at

VEILLE_UID = 10001
METRICS_PORT = 9400
K8S_IMAGE = "veille"  # the name kustomization.yaml's `images` entry turns into the site's image
PLACEHOLDER = "REPLACE-ME"

# Issue 15: one image, one command per component.
COMMANDS = {
    "gateway": ["gateway"],
    "validator": ["worker", "--role", "validate"],
    "detector": ["worker", "--role", "detect"],
    "sink": ["sink"],
    "clinic": ["clinic"],
    "webhooks": ["webhooks", "run"],
}
COMPOSE_COMMANDS = {
    "gateway-1": COMMANDS["gateway"],
    "gateway-2": COMMANDS["gateway"],
    **{name: argv for name, argv in COMMANDS.items() if name != "gateway"},
    "migrate": ["migrate"],
}
# Reach the database by design (docs/SECURITY.md): the sink and the clinic, the validators
# (device registry), the detectors (thresholds), the dispatcher (delivery log), the schema.
DATABASE_USERS = {"sink", "clinic", "validator", "detector", "webhooks", "migrate"}
# Compose's own grammar for ${NAME}, ${NAME:-default}, ${NAME:?error} (and without ':').
INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


# ---- readers ---------------------------------------------------------------------------------


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@cache
def compose() -> dict[str, Any]:
    """deploy/compose.yaml with YAML anchors and merge keys resolved, as Compose reads it."""
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose()["services"]
    return result


def veille_services() -> dict[str, dict[str, Any]]:
    """The services running the Veille image (the `x-veille` template's)."""
    image = compose()["x-veille"]["image"]
    return {name: svc for name, svc in services().items() if svc.get("image") == image}


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """What Compose makes of ``text`` with ``env`` (its ``.env``): ${...} replaced, $$ -> $."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        value = env.get(name)
        if op in (":?", "?") and not value:
            raise AssertionError(f"${{{name}}} is required ({arg}) and env.example leaves it unset")
        if op in (":-", "-") and not value:
            return str(arg)
        return value or ""

    return INTERPOLATION.sub(substitute, text.replace("$$", "\0")).replace("\0", "$")


def service_environment(name: str) -> dict[str, str]:
    environment = services()[name].get("environment", {})
    assert isinstance(environment, dict), f"{name}: environment as a mapping"
    return {key: interpolate(str(value), env_example()) for key, value in environment.items()}


def service_networks(svc: dict[str, Any]) -> set[str]:
    return set(svc.get("networks", []))  # a list, or a mapping of network -> options


@cache
def k8s_documents() -> tuple[tuple[Path, dict[str, Any]], ...]:
    """Every object of deploy/k8s/ (the secret templates included), with its file."""
    return tuple(
        (path, doc)
        for path in sorted(K8S.glob("*.yaml"))
        if path != KUSTOMIZATION
        for doc in yaml_documents(path)
    )


def k8s_objects(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in k8s_documents() if doc["kind"] == kind]


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    (found,) = [doc for doc in k8s_objects(kind) if doc["metadata"]["name"] == name]
    return found


def workloads() -> list[dict[str, Any]]:
    return [
        doc for _, doc in k8s_documents() if doc["kind"] in {"Deployment", "StatefulSet", "Job"}
    ]


def long_running() -> list[dict[str, Any]]:
    return [doc for doc in workloads() if doc["kind"] != "Job"]


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def component(workload: dict[str, Any]) -> str:
    return pod_labels(workload)["app.kubernetes.io/component"]


def containers() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for workload in workloads():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            yield workload, container


def config_map() -> dict[str, str]:
    data: dict[str, str] = k8s_object("ConfigMap", "veille-config")["data"]
    return data


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector's verdict on ``labels`` (matchLabels and matchExpressions)."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        if operator == "In":
            matched = labels.get(key) in values
        elif operator == "NotIn":
            matched = labels.get(key) not in values
        else:
            matched = (key in labels) == (operator == "Exists")
        if not matched:
            return False
    return True


def settings_env_names(model: type[BaseSettings] = Settings) -> set[str]:
    """Every environment variable pydantic-settings reads for ``model``: its ``env_prefix``
    plus each field's name (case-insensitive, so upper case here). A nested settings class
    (TopicNames, FhirSettings, WebhookSettings) is built by its default factory and reads its
    own prefix; the parent also accepts the whole part as JSON under its own field name."""
    prefix = str(model.model_config.get("env_prefix", ""))
    names = set()
    for name, field in model.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        names.add(alias or prefix + name)
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, BaseSettings):
            names |= settings_env_names(nested)
    return {name.upper() for name in names}


def veille_command_lines() -> list[tuple[str, list[str]]]:
    """(where, argv after `veille`) for every container of the Veille image."""
    lines = [(f"compose.yaml {name}", svc["command"]) for name, svc in veille_services().items()]
    for workload, container in containers():
        if container["image"] == K8S_IMAGE:
            assert "command" not in container, "keep the image's ENTRYPOINT: veille"
            lines.append((f"k8s {workload['metadata']['name']}", container["args"]))
    return lines


# ---- the image -------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments out."""
    instructions, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            keyword, _, rest = pending.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
            pending = ""
    return instructions


def test_the_image_is_slim_multi_stage_non_root_and_runs_veille() -> None:
    instructions = dockerfile_instructions()
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim") in instructions
    stages = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert [instructions[i][1] for i in stages] == [
        "${PYTHON_IMAGE} AS build",
        "${PYTHON_IMAGE} AS runtime",
    ]
    final = instructions[stages[-1] :]
    assert ("COPY", "--from=build /opt/veille /opt/veille") in final
    assert ("USER", f"{VEILLE_UID}:{VEILLE_UID}") in final
    (entrypoint,) = [args for keyword, args in final if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["veille"]
    runs = " ".join(args for keyword, args in final if keyword == "RUN")
    assert f"--uid {VEILLE_UID}" in runs and f"--gid {VEILLE_UID}" in runs
    for tool in ("apt-get", "gcc", "build-essential", "pip install"):
        assert tool not in runs, f"the final stage installs nothing ({tool})"
    assert "HEALTHCHECK" not in {keyword for keyword, _ in instructions}
    # The Faust directory the workers write to is the one the image prepares for uid 10001.
    assert "VEILLE_WORKER_DATA_DIR=/var/lib/veille/faust" in dict(final)["ENV"]
    assert "/var/lib/veille/faust" in runs


def test_the_build_context_lets_in_every_package_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "an allow-list: .veille/ (the local stack's keys) stays out"
    allowed = {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")}
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    packages = {name.rstrip("*") for name in find["find"]["include"]}
    assert allowed == {"pyproject.toml", "README.md"} | packages
    assert all((ROOT / name).exists() for name in allowed)


# ---- Compose ---------------------------------------------------------------------------------


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "check-jsonschema"
    assert binary.exists(), "check-jsonschema is a dev dependency: `bash scripts/bootstrap.sh`"
    return subprocess.run(
        [str(binary), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_compose_file_validates_against_the_compose_specification() -> None:
    run = check_jsonschema(COMPOSE)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok -- validation done" in run.stdout


def test_the_compose_schema_check_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("read_only: true", "readonly: true", 1))
    run = check_jsonschema(broken)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "readonly" in run.stdout


def test_every_veille_service_runs_hardened_with_json_logs_and_metrics() -> None:
    assert set(veille_services()) == set(COMPOSE_COMMANDS) | {"veille-cli"}
    for name, svc in veille_services().items():
        assert svc["user"] == f"{VEILLE_UID}:{VEILLE_UID}", name
        assert svc["read_only"] is True, name
        assert any(entry.split(":")[0] == "/tmp" for entry in svc["tmpfs"]), name
        assert svc["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in svc["security_opt"], name
        env = service_environment(name)
        assert env["VEILLE_METRICS_HOST"] == "0.0.0.0", name
        assert env["VEILLE_LOG_FORMAT"] == "json", name
        for dependency, condition in svc["depends_on"].items():
            assert condition["condition"] in {
                "service_healthy",
                "service_completed_successfully",
                "service_started",
            }, (name, dependency)
        healthcheck = svc["healthcheck"]
        if name in {"migrate", "veille-cli"}:
            assert healthcheck == {"disable": True}, name
        else:
            assert env["VEILLE_METRICS_PORT"] == str(METRICS_PORT), name
            assert f"127.0.0.1:{METRICS_PORT}/healthz" in " ".join(healthcheck["test"]), name


def test_every_compose_component_runs_its_command_after_what_it_needs() -> None:
    for name, argv in COMPOSE_COMMANDS.items():
        assert services()[name]["command"] == argv, name
    for name, svc in veille_services().items():
        depends = svc["depends_on"]
        if "database" in service_networks(svc) and name != "migrate":
            assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        if "kafka" in service_networks(svc):
            assert depends["kafka-topics"] == {"condition": "service_completed_successfully"}
    assert services()["migrate"]["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    assert services()["kafka-topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for worker in ("validator", "detector"):
        env = service_environment(worker)
        mounts = [entry.split(":")[0] for entry in services()[worker]["tmpfs"]]
        assert env["VEILLE_WORKER_DATA_DIR"] in mounts, f"{worker}: Faust's directory is writable"


def test_two_gateways_keep_distinct_stable_ids_on_a_shared_subscription() -> None:
    gateways = {name: service_environment(name) for name in ("gateway-1", "gateway-2")}
    assert len({env["VEILLE_GATEWAY_ID"] for env in gateways.values()}) == 2
    for name, env in gateways.items():
        assert env["VEILLE_GATEWAY_SUBSCRIPTION"] == "shared", name
        assert env["VEILLE_MQTT_CA_FILE"] == "/run/secrets/mqtt_ca.crt", name
        assert services()[name]["secrets"] == ["mqtt_ca.crt"], name
        # Each gateway its own broker account (deploy/README.md, step 5).
        assert services()[name]["env_file"][0]["path"] == f"./compose/secrets/{name}.env"


def test_compose_networks_keep_the_broker_to_gateways_and_the_database_to_its_users() -> None:
    networks = compose()["networks"]
    for internal in ("mqtt", "kafka", "database", "metrics"):
        assert networks[internal] == {"internal": True}, internal
    members = {
        network: {name for name, svc in services().items() if network in service_networks(svc)}
        for network in networks
    }
    assert members["mqtt"] == {"mosquitto", "gateway-1", "gateway-2", "veille-cli"}
    assert members["database"] == {"timescaledb", "veille-cli"} | DATABASE_USERS
    running = set(veille_services()) - {"migrate", "veille-cli"}
    assert running <= members["kafka"] and running <= members["metrics"]
    assert {"prometheus", "grafana"} <= members["metrics"]
    # Published ports: the broker for devices; the rest on the host's loopback only.
    published = {name: svc["ports"] for name, svc in services().items() if "ports" in svc}
    assert published["mosquitto"] == ["8883:8883"]
    assert all(
        p.startswith("127.0.0.1:") for n, ps in published.items() if n != "mosquitto" for p in ps
    )


def test_the_broker_runs_the_production_configuration_with_its_certificates() -> None:
    broker = services()["mosquitto"]
    conf_mount = "./mosquitto/mosquitto.conf:/etc/mosquitto/mosquitto.conf:ro"
    assert conf_mount in broker["volumes"]
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    targets = {secret["target"] for secret in broker["secrets"]}
    for directive in ("cafile", "certfile", "keyfile"):
        (path,) = re.findall(rf"^{directive} (\S+)$", conf, re.MULTILINE)
        assert path in targets, directive
    (data_dir,) = re.findall(r"^persistence_location (\S+?)/?$", conf, re.MULTILINE)
    (dynsec,) = re.findall(r"^plugin_opt_config_file (\S+)$", conf, re.MULTILINE)
    assert f"mosquitto-data:{data_dir}" in broker["volumes"]
    assert dynsec.startswith(data_dir + "/"), "the plugin's file lives on the volume"
    dockerfile = (COMPOSE_DIR / "mosquitto" / "Dockerfile").read_text()
    assert "FROM debian:bookworm-slim" in dockerfile  # the plugin path the conf names
    assert broker["build"] == "./compose/mosquitto" and broker["user"] == "1883:1883"


def test_prometheus_and_grafana_get_the_monitoring_files() -> None:
    prometheus = services()["prometheus"]
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in prometheus["volumes"] if ":ro" in volume)
    config_target = mounts["./prometheus/prometheus.compose.yml"]
    assert f"--config.file={config_target}" in prometheus["command"]
    # rule_files is relative to the configuration: the rules sit beside it.
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.compose.yml").read_text())
    for rule_file in config["rule_files"]:
        assert mounts[f"./prometheus/{rule_file}"] == str(Path(config_target).parent / rule_file)
    for source in mounts:
        assert (DEPLOY / source).is_file(), source
    # Every scrape target is a Compose service on `metrics`, at its metrics port.
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, port = target.split(":")
                if job["job_name"] == "prometheus":
                    continue
                assert "metrics" in service_networks(services()[host]), target
                assert service_environment(host)["VEILLE_METRICS_PORT"] == port, target

    grafana = services()["grafana"]
    grafana_mounts = dict(
        volume.rsplit(":", 2)[:2] for volume in grafana["volumes"] if ":ro" in volume
    )
    provisioning = DEPLOY / "grafana" / "provisioning"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "veille.yml").read_text())[
        "providers"
    ]
    assert grafana_mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert (DEPLOY / "grafana" / "dashboards" / "veille.json").is_file()
    for kind in ("datasources", "dashboards"):
        assert (
            grafana_mounts[f"./grafana/provisioning/{kind}"] == f"/etc/grafana/provisioning/{kind}"
        )
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    url = urlsplit(datasource["url"])
    assert url.hostname == "prometheus" and url.port == 9090
    assert "127.0.0.1:9090:9090" in prometheus["ports"]


def test_compose_secrets_are_uncommitted_files_the_readme_describes() -> None:
    readme = (SECRETS_DIR / "README.md").read_text()
    files = [Path(secret["file"]) for secret in compose()["secrets"].values()]
    files += [
        Path(entry["path"]) for svc in services().values() for entry in svc.get("env_file", [])
    ]
    for file in files:
        assert file.parent == Path("./compose/secrets"), file
        assert f"`{file.name}`" in readme, f"secrets/README.md says what {file.name} holds"
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing could be committed")
    for name, ignored in [(f.name, True) for f in files] + [("README.md", False)]:
        path = (SECRETS_DIR / name).relative_to(ROOT)
        run = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=ROOT, check=False)
        assert run.returncode == (0 if ignored else 1), f"{path} ignored: {ignored}"


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {name: value for name, value in pairs if not name.startswith("#")}


def test_generated_secrets_are_every_file_compose_reads_and_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "secrets"
    env = {**os.environ, "MQTT_HOSTNAME": "mqtt.example.org"}

    def generate() -> None:
        run = subprocess.run(
            ["sh", str(GENERATE_SECRETS), "--no-chown", str(out)],
            capture_output=True, text=True, check=False, timeout=60, env=env,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        assert "mqtt_ca.crt broker.crt broker.key" in run.stdout  # the PKI's, not generated

    generate()
    pki = {"mqtt_ca.crt", "broker.crt", "broker.key"}
    wanted = {Path(s["file"]).name for s in compose()["secrets"].values()} - pki
    wanted |= {Path(e["path"]).name for svc in services().values() for e in svc.get("env_file", [])}
    assert wanted <= {p.name for p in out.iterdir()}
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path.name} is for its owner"
    before = {p.name: p.read_text() for p in out.iterdir()}
    generate()  # again: passwords kept, env files rewritten the same
    assert before == {p.name: p.read_text() for p in out.iterdir()}

    known = settings_env_names()
    monkeypatch.setenv("VEILLE_STATE_DIR", str(tmp_path / "state"))  # no local stack.env
    users = {"migrate.env": "veille", **{f"{c}.env": r for c, r in ROLE_NAMES.items()}}
    users["webhooks.env"] = users.pop("registry.env")
    for env_file, role in users.items():
        variables = read_env_file(out / env_file)
        assert set(variables) <= known, env_file
        (url,) = [v for k, v in variables.items() if k.endswith("DATABASE_URL")]
        parts = urlsplit(url)
        assert (parts.username, parts.hostname, parts.path) == (role, "timescaledb", "/veille")
        password_file = "db_owner_password" if role == "veille" else f"db_{role[7:]}_password"
        assert parts.password == (out / password_file).read_text()
    for n in (1, 2):
        variables = read_env_file(out / f"gateway-{n}.env")
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        findings = {f.check: f.status for f in run_checks(Settings())}
        for check in ("mqtt-tls", "mqtt-credentials", "default-passwords"):
            assert findings[check] is Status.OK, (n, check)
        parts = urlsplit(variables["VEILLE_MQTT_URL"])
        assert (parts.username, parts.hostname) == (f"veille-gateway-{n}", "mqtt.example.org")
    for name, value in read_env_file(out / "operator.env").items():
        monkeypatch.setenv(name, value)
    assert {f.check: f.status for f in run_checks(Settings())}["pseudonym-key"] is Status.OK


def test_compose_interpolates_only_what_env_example_sets() -> None:
    text = COMPOSE.read_text()
    example = env_example()
    commented = set(re.findall(r"^#([A-Z_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    for match in INTERPOLATION.finditer(text.replace("$$", "")):
        name, op = match["name"], match["op"]
        assert not name.startswith("VEILLE_"), f"{name}: Compose's own, not a setting's name"
        if op in (":?", "?"):
            assert example.get(name), f"{name} is required: env.example sets it"
        else:
            assert name in example or name in commented, f"env.example mentions {name}"
    # Every remaining `$` is escaped for the container ($$): none is left for Compose to eat.
    assert "$" not in INTERPOLATION.sub("", text.replace("$$", ""))


def test_the_database_roles_made_at_first_start_are_the_ones_veille_grants_to() -> None:
    script = ROLES_SCRIPT.read_text()
    created = set(re.findall(r"^CREATE ROLE (\w+) LOGIN PASSWORD :'(\w+)';$", script, re.MULTILINE))
    assert {role for role, _ in created} == {"veille"} | set(ROLE_NAMES.values())
    mounted = set(services()["timescaledb"]["secrets"])
    for _, variable in created:
        assert f'-v {variable}="$(secret db_{variable}_password)"' in script
        assert f"db_{variable}_password" in mounted
    assert "CREATE DATABASE veille OWNER veille;" in script
    assert os.access(ROLES_SCRIPT, os.X_OK), "the image's entrypoint runs it, not sources it"
    assert subprocess.run(["sh", "-n", str(ROLES_SCRIPT)], check=False).returncode == 0
    init = (
        "./compose/timescaledb/50-veille-roles.sh:/docker-entrypoint-initdb.d/50-veille-roles.sh:ro"
    )
    assert init in services()["timescaledb"]["volumes"]


# ---- topic creation (compose's kafka-topics service, the k8s Job) ----------------------------

STUB = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if "--describe" in args:
    topic = args[args.index("--topic") + 1]
    print(f"Topic: {{topic}}\\tTopicId: x\\tPartitionCount: {{os.environ['STUB_PARTITIONS']}}\\tReplicationFactor: 1\\tConfigs: ")
"""


def run_topic_script(
    script: str, env: dict[str, str], tmp_path: Path, *, partitions: str
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """Runs a topic-creation script with a stub kafka-topics.sh that records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "kafka-topics.sh"
    stub.write_text(STUB.format(python=sys.executable))
    stub.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    log.write_text("")
    run = subprocess.run(
        ["/bin/bash", "-c", script],
        env={"PATH": os.environ["PATH"], **env, "KAFKA_BIN": str(bin_dir),
             "STUB_LOG": str(log), "STUB_PARTITIONS": partitions},
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    return run, [json.loads(line) for line in log.read_text().splitlines()]


def topic_scripts() -> dict[str, tuple[str, dict[str, str]]]:
    (compose_script,) = services()["kafka-topics"]["command"]
    job = k8s_object("Job", "kafka-topics")["spec"]["template"]["spec"]["containers"][0]
    job_env = {**config_map(), **{e["name"]: e["value"] for e in job["env"]}}
    return {
        "compose": (
            interpolate(compose_script, env_example()),
            service_environment("kafka-topics"),
        ),
        "k8s": (job["args"][0], job_env),
    }


@pytest.mark.parametrize("where", ["compose", "k8s"])
def test_topics_are_created_with_the_settings_names_and_partition_count(
    where: str, tmp_path: Path
) -> None:
    script, env = topic_scripts()[where]
    # Kubernetes expands $(NAME) in args itself: the script uses backticks instead.
    assert not re.search(r"\$\(\w+\)", script)
    partitions = env["VEILLE_PARTITIONS"]
    run, calls = run_topic_script(script, env, tmp_path, partitions=partitions)
    assert run.returncode == 0, run.stdout + run.stderr
    created: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    for args in calls:
        options = dict(zip(args, args[1:], strict=False))  # each option and what follows it
        assert options["--bootstrap-server"] == env["VEILLE_KAFKA_BOOTSTRAP"]
        if "--create" in args:
            assert "--if-not-exists" in args
            pairs = [args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--config"]
            created[options["--topic"]] = (options, dict(pairs))
    assert set(created) == {*TopicNames().all(), DETECTOR_STATE_CHANGELOG}
    replication = {"compose": "1", "k8s": "3"}[where]
    for topic, (options, configs) in created.items():
        assert options["--partitions"] == partitions, topic
        assert options["--replication-factor"] == replication, topic
        if where == "k8s":
            assert configs["min.insync.replicas"] == "2", topic
    topics = TopicNames()
    assert created[DETECTOR_STATE_CHANGELOG][1]["cleanup.policy"] == "compact"
    assert int(created[topics.raw][1]["retention.ms"]) >= 7 * 86_400_000  # replay after a fix
    assert int(created[topics.dead_letters][1]["retention.ms"]) >= 30 * 86_400_000  # reviewed


@pytest.mark.parametrize("where", ["compose", "k8s"])
def test_topic_creation_stops_on_a_topic_with_other_partitions(where: str, tmp_path: Path) -> None:
    script, env = topic_scripts()[where]
    run, calls = run_topic_script(script, env, tmp_path, partitions="12")
    assert run.returncode == 1
    assert f"has 12 partitions, VEILLE_PARTITIONS is {env['VEILLE_PARTITIONS']}" in run.stderr
    assert len([c for c in calls if "--create" in c]) == 1, "stops at the first"


def test_topic_names_and_partitions_agree_everywhere() -> None:
    topics = TopicNames()
    expected = {
        "VEILLE_TOPIC_RAW": topics.raw,
        "VEILLE_TOPIC_READINGS": topics.readings,
        "VEILLE_TOPIC_DEAD_LETTERS": topics.dead_letters,
        "VEILLE_TOPIC_ALERTS": topics.alerts,
    }
    compose_env = compose()["x-veille-env"]
    for name, value in expected.items():
        assert compose_env[name] == value == config_map()[name], name
    assert (
        service_environment("kafka-topics")["VEILLE_PARTITIONS"]
        == env_example()["TOPIC_PARTITIONS"]
    )
    changelog_names = {
        service_environment("kafka-topics")["DETECTOR_CHANGELOG"],
        *(e["value"] for e in topic_job_env() if e["name"] == "DETECTOR_CHANGELOG"),
    }
    assert changelog_names == {DETECTOR_STATE_CHANGELOG}


def topic_job_env() -> list[dict[str, str]]:
    env: list[dict[str, str]] = k8s_object("Job", "kafka-topics")["spec"]["template"]["spec"][
        "containers"
    ][0]["env"]
    return env


# ---- Kubernetes ------------------------------------------------------------------------------


def test_every_manifest_validates_against_the_kubernetes_schemas() -> None:
    checked = 0
    for path, doc in k8s_documents():
        if doc["kind"] == "ScaledObject":
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(map(str, exc.path))
            pytest.fail(
                f"{path.name} {doc['kind']}/{doc['metadata']['name']}: {where}: {exc.message}"
            )
        checked += 1
    assert checked == len(k8s_documents()) - len(k8s_objects("ScaledObject")) > 20


def test_kubernetes_validation_rejects_a_broken_manifest() -> None:
    deployment = copy.deepcopy(k8s_object("Deployment", "sink"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFileSystem"] = True  # a typo: unknown field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def strict(schema: Any) -> Any:
    """The CRD schema refusing unknown fields, as the API server's strict field validation
    does (a structural schema otherwise prunes them silently)."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


@cache
def scaled_object_validator() -> jsonschema.Validator:
    crd = yaml.safe_load(KEDA_CRD.read_text())
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1" and crd["spec"]["names"]["kind"] == "ScaledObject"
    return jsonschema.Draft202012Validator(strict(version["schema"]["openAPIV3Schema"]))


def test_scaled_objects_validate_against_keda_s_crd() -> None:
    scaled = k8s_objects("ScaledObject")
    assert {so["metadata"]["name"] for so in scaled} == {"validator", "detector", "sink"}
    for so in scaled:
        errors = [e.message for e in scaled_object_validator().iter_errors(so)]
        assert errors == [], so["metadata"]["name"]
        assert so["apiVersion"] == "keda.sh/v1alpha1"


def test_the_crd_check_rejects_a_broken_scaled_object() -> None:
    so = copy.deepcopy(k8s_object("ScaledObject", "sink"))
    so["spec"]["maxReplicas"] = so["spec"].pop("maxReplicaCount")  # HPA's name, not KEDA's
    assert not scaled_object_validator().is_valid(so)
    so = copy.deepcopy(k8s_object("ScaledObject", "sink"))
    so["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 500  # metadata values are strings
    assert not scaled_object_validator().is_valid(so)


def test_the_keda_crd_is_the_copy_its_readme_names() -> None:
    assert hashlib.sha256(KEDA_CRD.read_bytes()).hexdigest() == KEDA_CRD_SHA256
    assert KEDA_CRD_SHA256 in (KEDA_CRD.parent / "README.md").read_text()


def test_scaled_objects_follow_each_group_s_lag_and_never_exceed_the_partitions() -> None:
    partitions = int(config_map()["VEILLE_PARTITIONS"])
    topics = TopicNames()
    expected = {
        "validator": (APP_IDS["validate"], topics.raw),
        "detector": (APP_IDS["detect"], topics.readings),
        "sink": (SINK_GROUP_ID, topics.readings),
    }
    for path, doc in k8s_documents():
        if doc["kind"] != "ScaledObject":
            continue
        name, spec = doc["metadata"]["name"], doc["spec"]
        target = k8s_object("Deployment", spec["scaleTargetRef"]["name"])
        assert component(target) == name
        assert "replicas" not in target["spec"], f"{name}: KEDA owns the replica count"
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions, name
        (line,) = [ln for ln in path.read_text().splitlines() if "maxReplicaCount:" in ln]
        assert "VEILLE_PARTITIONS" in line and "partition" in line.partition("#")[2], line
        (trigger,) = spec["triggers"]
        metadata = trigger["metadata"]
        assert trigger["type"] == "kafka"
        assert (metadata["consumerGroup"], metadata["topic"]) == expected[name]
        assert int(metadata["lagThreshold"]) > 0
        assert metadata["allowIdleConsumers"] == "false"
        # KEDA reads the bootstrap from the target's containers: they must have it.
        (container,) = target["spec"]["template"]["spec"]["containers"]
        assert container["envFrom"] == [{"configMapRef": {"name": "veille-config"}}]
        assert metadata["bootstrapServersFromEnv"] in config_map()


def test_kustomization_lists_every_manifest_and_names_the_image() -> None:
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {KUSTOMIZATION.name, SECRET_TEMPLATES.name}
    assert sorted(kustomization["resources"]) == sorted(files)
    assert kustomization["namespace"] == k8s_object("Namespace", "veille")["metadata"]["name"]
    (image,) = [i for i in kustomization["images"] if i["name"] == K8S_IMAGE]
    assert image["newName"] and ("newTag" in image or image["digest"].startswith("sha256:"))
    images = {container["image"] for _, container in containers()}
    assert images == {K8S_IMAGE, "apache/kafka:3.9.1"}
    assert services()["kafka"]["image"] == compose()["x-kafka-image"]
    assert compose()["x-kafka-image"].endswith("apache/kafka:3.9.1}")


def test_every_container_is_non_root_read_only_and_without_capabilities() -> None:
    data_dir = config_map()["VEILLE_WORKER_DATA_DIR"]
    for workload, container in containers():
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        uid = container.get("securityContext", {}).get(
            "runAsUser", pod["securityContext"]["runAsUser"]
        )
        assert uid == (VEILLE_UID if container["image"] == K8S_IMAGE else 1000), name
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["runAsNonRoot"] is True, name
        assert security["capabilities"] == {"drop": ["ALL"]}, name
        resources = container["resources"]
        for part in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[part]), (name, part)
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
        writable = {path for path, volume in mounts.items() if "emptyDir" in volume}
        assert "/tmp" in writable, name
        if container.get("args", [""])[0] == "worker":
            assert data_dir in writable, f"{name}: Faust's directory on an emptyDir"


def test_long_running_containers_are_probed_on_healthz_and_readyz() -> None:
    assert {component(w) for w in long_running()} == set(COMMANDS)
    assert config_map()["VEILLE_METRICS_PORT"] == str(METRICS_PORT)
    for workload in long_running():
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = container[probe]["httpGet"]
            assert get["path"] == path, (component(workload), probe)
            assert ports.get(get["port"], get["port"]) == METRICS_PORT, (component(workload), probe)
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert container["args"] == COMMANDS[component(workload)]


def test_gateways_take_their_stable_id_from_the_pod_name() -> None:
    gateway = k8s_object("StatefulSet", "gateway")
    (container,) = gateway["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["VEILLE_GATEWAY_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["VEILLE_GATEWAY_SUBSCRIPTION"]["value"] == "shared"
    assert gateway["spec"]["replicas"] >= 2
    governing = k8s_object("Service", gateway["spec"]["serviceName"])
    assert governing["spec"]["clusterIP"] == "None"
    assert selects({"matchLabels": governing["spec"]["selector"]}, pod_labels(gateway))
    assert not [
        w for w in long_running() if w["kind"] == "Deployment" and component(w) == "gateway"
    ]


def test_services_reach_their_pods_on_named_ports() -> None:
    for service in k8s_objects("Service"):
        (workload,) = [
            w
            for w in long_running()
            if selects({"matchLabels": service["spec"]["selector"]}, pod_labels(w))
        ]
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, service["metadata"]["name"]
            assert port["port"] == ports[port["targetPort"]]
    metrics = {component(w) for w in long_running()}
    for name in metrics:
        service = k8s_object("Service", f"{name}-metrics")
        assert (
            service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"]
        )
    clinic = k8s_object("Deployment", "clinic")
    (container,) = clinic["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["VEILLE_CLINIC_HOST"] == "0.0.0.0"
    assert k8s_object("Service", "clinic")["spec"]["ports"][0]["port"] == int(
        env["VEILLE_CLINIC_PORT"]
    )


def test_every_long_running_workload_has_a_disruption_budget() -> None:
    budgets = k8s_objects("PodDisruptionBudget")
    for workload in long_running():
        matching = [b for b in budgets if selects(b["spec"]["selector"], pod_labels(workload))]
        assert len(matching) == 1, component(workload)
        (budget,) = matching
        # docs/OPERATIONS.md, "Rolling upgrade": never two members of a group at once.
        assert budget["spec"]["maxUnavailable"] == 1 and "minAvailable" not in budget["spec"]


def allowed(direction: str, labels: dict[str, str]) -> set[tuple[str, int]]:
    """(protocol, port) the NetworkPolicies allow a pod with ``labels`` in ``direction``."""
    key = direction.lower()
    result = set()
    for policy in k8s_objects("NetworkPolicy"):
        spec = policy["spec"]
        if direction not in spec["policyTypes"] or not selects(spec["podSelector"], labels):
            continue
        for rule in spec.get(key, []):
            assert rule.get("ports"), f"{policy['metadata']['name']}: every rule names its ports"
            result |= {(port["protocol"], port["port"]) for port in rule["ports"]}
    return result


def test_network_policies_deny_by_default_and_allow_what_each_component_needs() -> None:
    (deny,) = [p for p in k8s_objects("NetworkPolicy") if p["metadata"]["name"] == "default-deny"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    pods = {component(w): pod_labels(w) for w in workloads()}
    egress = {name: allowed("Egress", labels) for name, labels in pods.items()}
    ingress = {name: allowed("Ingress", labels) for name, labels in pods.items()}
    assert {name for name, ports in egress.items() if ("TCP", 8883) in ports} == {"gateway"}
    assert {name for name, ports in egress.items() if ("TCP", 5432) in ports} == DATABASE_USERS
    assert {name for name, ports in egress.items() if ("TCP", 9092) in ports} == set(COMMANDS) | {
        "kafka-topics"
    }
    assert {name for name, ports in egress.items() if ("TCP", 443) in ports} == {"webhooks"}
    assert all(("UDP", 53) in ports for ports in egress.values()), "DNS for every pod"
    for name in COMMANDS:
        assert ("TCP", METRICS_PORT) in ingress[name], f"Prometheus scrapes {name}"
    assert {name for name, ports in ingress.items() if ("TCP", 8080) in ports} == {"clinic"}
    # The database policy says why the three consumers beyond the sink and clinic are there.
    text = (K8S / "networkpolicies.yaml").read_text()
    for reason in ("device registry", "thresholds", "delivery log"):
        assert reason in text


def test_secret_templates_hold_placeholders_and_every_reference_resolves() -> None:
    templates = yaml_documents(SECRET_TEMPLATES)
    provided = {
        (doc["metadata"]["name"], key)
        for doc in templates
        for key in {**doc.get("stringData", {}), **doc.get("data", {})}
    }
    text = SECRET_TEMPLATES.read_text()
    assert text.startswith("# TEMPLATE - NOT APPLIED")
    for doc in templates:
        assert "data" not in doc or doc["kind"] == "ConfigMap", "stringData: readable placeholders"
        for key, value in {**doc.get("stringData", {}), **doc.get("data", {})}.items():
            assert PLACEHOLDER in value, key
            if "://" in value:
                assert urlsplit(value).password == PLACEHOLDER, key
            # Nothing that looks generated (hex, base64): no long run holding many digits.
            for token in re.findall(r"[A-Za-z0-9+/=_-]{16,}", value):
                assert len(re.findall(r"\d", token)) < 4, token
    referenced = set()
    for workload, container in containers():
        for entry in container.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                referenced.add((ref["name"], ref["key"]))
                assert ref["key"] == entry["name"], "one key per variable, named after it"
        for volume in workload["spec"]["template"]["spec"]["volumes"]:
            if "configMap" in volume:
                name = volume["configMap"]["name"]
                assert name == "veille-config" or any(n == name for n, _ in provided), name
                for mount in container["volumeMounts"]:
                    if mount["name"] == volume["name"]:
                        mounted = {f"{mount['mountPath']}/{k}" for n, k in provided if n == name}
                        for var in container.get("env", []):
                            if var["name"] == "VEILLE_MQTT_CA_FILE":
                                assert var["value"] in mounted
    assert referenced <= provided
    secrets_used = {name for name, _ in referenced}
    assert secrets_used == {d["metadata"]["name"] for d in templates if d["kind"] == "Secret"}
    assert SECRET_TEMPLATES.name not in yaml.safe_load(KUSTOMIZATION.read_text())["resources"]


# ---- both: command lines and settings names --------------------------------------------------


@pytest.mark.parametrize(
    ("where", "argv"), veille_command_lines(), ids=[w for w, _ in veille_command_lines()]
)
def test_every_veille_command_line_parses(where: str, argv: list[str]) -> None:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"{where}: `veille {shlex.join(argv)}` does not parse ({exc})")
    assert args.command == argv[0]


DEPLOYMENT_FILES = [
    COMPOSE,
    DOCKERFILE,
    DEPLOY / "README.md",
    *sorted(p for p in COMPOSE_DIR.rglob("*") if p.is_file()),
    *sorted(K8S.glob("*.yaml")),
]


def test_every_veille_variable_named_is_a_setting() -> None:
    known = settings_env_names()
    # The derivation itself: top level, each nested part's prefix, and JSON for a whole part.
    assert {"VEILLE_GATEWAY_ID", "VEILLE_TOPIC_RAW", "VEILLE_FHIR_BASE"} <= known
    assert {"VEILLE_WEBHOOK_MAX_ATTEMPTS", "VEILLE_TOPICS"} <= known
    unknown, seen = set(), set()
    for path in DEPLOYMENT_FILES:
        for name in re.findall(r"(?<![A-Za-z0-9_])VEILLE_[A-Z0-9_]+", path.read_text()):
            seen.add(name)
            if name.endswith("_"):  # a family, as in VEILLE_TOPIC_*
                if not any(k.startswith(name) for k in known):
                    unknown.add(f"{path.relative_to(ROOT)}: {name}*")
            elif name not in known:
                unknown.add(f"{path.relative_to(ROOT)}: {name}")
    assert unknown == set()
    assert {
        "VEILLE_GATEWAY_SUBSCRIPTION",
        "VEILLE_WORKER_DATABASE_URL",
        "VEILLE_PARTITIONS",
    } <= seen
