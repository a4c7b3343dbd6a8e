"""Broker accounts and their rights, in Mosquitto's dynamic security plugin.

Mosquitto 2.0's plugin (``mosquitto_dynamic_security.so``) keeps accounts, roles and ACLs in
one JSON file, passwords as salted PBKDF2-SHA512 hashes, and takes changes live as JSON
commands published on ``$CONTROL/dynamic-security/v1`` by its admin account: no broker
reload, and deleting an account disconnects its connected client at once (measured: the
same second). See docs/SECURITY.md for why this and not a password file.

Rights (everything else is refused, the plugin's defaults being "no publish, no subscribe"):

- a device, ``veille-device-{id}``: publish on ``veille/v1/{tenant}/{id}/readings`` only;
- the gateway, ``veille-gateway``: subscribe to the device topics (plain or shared), publish
  nothing;
- the simulated fleet, ``veille-simulator`` (local stack, bench, tests): publish on any
  device topic of the contract, never deeper.

Mosquitto 2.0.11's dynamic security does not substitute ``%u`` in ACLs (measured), so each
device gets a role of its own naming its one topic.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devices import device_topic
from ingest import MqttEndpoint, subscription_filters
from veille.errors import VeilleError

__all__ = [
    "GATEWAY_ACCOUNT",
    "SIMULATOR_ACCOUNT",
    "SERVICE_PREFIX",
    "SIMULATOR_TOPIC",
    "BrokerAdmin",
    "BrokerAdminError",
    "DeviceAccount",
    "device_role",
]

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
GATEWAY_ACCOUNT = "veille-gateway"
SIMULATOR_ACCOUNT = "veille-simulator"
SIMULATOR_TOPIC = "veille/v1/+/+/+"  # any device's stream of the contract, nothing deeper
DEVICE_ROLE_PREFIX = "veille-device-"
SERVICE_PREFIX = "veille-"  # service accounts and roles; device ids may not start with it
ANSWER_TIMEOUT_S = 10.0
COMMANDS_PER_MESSAGE = 200  # one round trip each; the plugin still rewrites its file per change
NOT_FOUND = ("not found",)
ALREADY_EXISTS = ("already exists",)


class BrokerAdminError(VeilleError):
    """The broker's dynamic security refused a command, or did not answer."""


def device_role(device_id: str) -> str:
    return f"{DEVICE_ROLE_PREFIX}{device_id}"


@dataclass(frozen=True, slots=True)
class DeviceAccount:
    """A device's broker account: user name = device id, one role naming its one topic."""

    device_id: str
    tenant: str
    credential: str

    def commands(self) -> list[dict[str, Any]]:
        """Replace whatever an earlier, interrupted attempt left under these names."""
        role = device_role(self.device_id)
        return [
            {"command": "deleteClient", "username": self.device_id},
            {"command": "deleteRole", "rolename": role},
            _role(role, [_acl("publishClientSend", device_topic(self.tenant, self.device_id))]),
            _client(self.device_id, self.credential, role, "Veille device"),
        ]


def _acl(kind: str, topic: str) -> dict[str, Any]:
    return {"acltype": kind, "topic": topic, "priority": 0, "allow": True}


def _role(name: str, acls: list[dict[str, Any]]) -> dict[str, Any]:
    return {"command": "createRole", "rolename": name, "acls": acls}


def _client(username: str, password: str, role: str, text: str) -> dict[str, Any]:
    return {
        "command": "createClient", "username": username, "password": password,
        "textname": text, "roles": [{"rolename": role, "priority": 0}],
    }  # fmt: skip


def _service_commands(
    account: str, password: str, acls: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Created when missing, left alone otherwise: re-creating would disconnect a running
    gateway (its password lives with the stack's state and does not change)."""
    return [_role(account, acls), _client(account, password, account, "Veille service account")]


class BrokerAdmin:
    """One connection as the plugin's admin; :meth:`run` sends commands and checks answers.

    Synchronous (paho's thread does the I/O): async callers wrap it in ``asyncio.to_thread``.
    """

    def __init__(self, endpoint: MqttEndpoint) -> None:
        self._endpoint = endpoint
        self._lock = threading.Lock()
        self._answers: dict[str, threading.Event] = {}
        self._responses: dict[str, list[dict[str, Any]]] = {}
        self._ready = threading.Event()
        self._refusal: str | None = None
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"veille-admin-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        endpoint.configure(self._client)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def __enter__(self) -> BrokerAdmin:
        try:
            self._client.connect(self._endpoint.host, self._endpoint.port, keepalive=30)
        except OSError as exc:
            raise BrokerAdminError(
                f"cannot reach the broker's admin account at {self._endpoint.describe()}: {exc}"
            ) from exc
        self._client.loop_start()
        if not self._ready.wait(ANSWER_TIMEOUT_S) or self._refusal is not None:
            self.__exit__()
            raise BrokerAdminError(
                f"the broker at {self._endpoint.describe()} refused its admin account: "
                f"{self._refusal or 'no answer'}; check VEILLE_MQTT_ADMIN_URL"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.loop_stop()
        self._client.disconnect()

    # paho thread ------------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._refusal = str(reason)
            self._ready.set()
            return
        client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        if any(r.is_failure for r in reasons):
            self._refusal = f"subscription to {RESPONSE_TOPIC} refused ({reasons})"
        self._ready.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            responses = json.loads(message.payload).get("responses", [])
            correlation = str(responses[0].get("correlationData", ""))
        except (ValueError, AttributeError, IndexError):
            return  # not an answer to us
        with self._lock:
            event = self._answers.get(correlation)
            if event is None:
                return
            self._responses[correlation] = responses
        event.set()

    # commands ---------------------------------------------------------------------------
    def run(
        self, commands: Sequence[dict[str, Any]], *, tolerate: Iterable[str] = ()
    ) -> list[dict[str, Any]]:
        """Send ``commands`` (batched) and return the plugin's answers, in order.

        An answer with an error fails the call unless the error contains one of ``tolerate``
        (``"not found"`` for deleting what may not exist).
        """
        tolerated = tuple(tolerate)
        answers: list[dict[str, Any]] = []
        for start in range(0, len(commands), COMMANDS_PER_MESSAGE):
            batch = list(commands[start : start + COMMANDS_PER_MESSAGE])
            answers.extend(self._send(batch))
        for command, answer in zip(commands, answers, strict=True):
            error = answer.get("error")
            if error and not any(t in str(error).lower() for t in tolerated):
                raise BrokerAdminError(
                    f"the broker refused {command['command']} "
                    f"{command.get('username') or command.get('rolename') or ''}: {error}"
                )
        return answers

    def _send(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # The plugin echoes a command's "correlationData" in its answer: the batch's first
        # command carries ours, so answers to another admin connection are told apart.
        correlation = uuid.uuid4().hex
        batch = [{**batch[0], "correlationData": correlation}, *batch[1:]]
        event = threading.Event()
        with self._lock:
            self._answers[correlation] = event
        self._client.publish(CONTROL_TOPIC, json.dumps({"commands": batch}), qos=1)
        try:
            if not event.wait(ANSWER_TIMEOUT_S):
                raise BrokerAdminError(
                    f"the broker's dynamic security did not answer within {ANSWER_TIMEOUT_S:.0f} "
                    "s: is the plugin loaded (plugin mosquitto_dynamic_security.so)?"
                )
            with self._lock:
                responses = self._responses.pop(correlation)
        finally:
            with self._lock:
                self._answers.pop(correlation, None)
        if len(responses) != len(batch):
            raise BrokerAdminError(f"the broker answered {len(responses)} of {len(batch)} commands")
        return responses

    # what Veille does with it -----------------------------------------------------------
    def ensure_service_accounts(self, *, gateway_password: str, simulator_password: str) -> None:
        """The gateway's and the simulated fleet's accounts, with these passwords."""
        plain, shared = subscription_filters("plain")
        gateway = _service_commands(
            GATEWAY_ACCOUNT, gateway_password,
            [_acl("subscribeLiteral", plain), _acl("subscribeLiteral", shared)],
        )  # fmt: skip
        simulator = _service_commands(
            SIMULATOR_ACCOUNT, simulator_password, [_acl("publishClientSend", SIMULATOR_TOPIC)]
        )
        self.run([*gateway, *simulator], tolerate=ALREADY_EXISTS)

    def add_devices(self, accounts: Sequence[DeviceAccount]) -> None:
        self.run([c for a in accounts for c in a.commands()], tolerate=NOT_FOUND)

    def remove_device(self, device_id: str) -> bool:
        """Delete the account (disconnecting the device) and its role; False if none existed."""
        answers = self.run(
            [
                {"command": "deleteClient", "username": device_id},
                {"command": "deleteRole", "rolename": device_role(device_id)},
            ],
            tolerate=NOT_FOUND,
        )
        return "error" not in answers[0]

    def set_device_password(self, device_id: str, credential: str) -> None:
        self.run([{"command": "setClientPassword", "username": device_id, "password": credential}])

    def device_accounts(self) -> set[str]:
        """User names of the broker's device accounts (every account not named veille-...)."""
        answer = self.run([{"command": "listClients", "verbose": False, "count": -1}])[0]
        names: list[str] = answer.get("data", {}).get("clients", [])
        return {n for n in names if not n.startswith(SERVICE_PREFIX)}
