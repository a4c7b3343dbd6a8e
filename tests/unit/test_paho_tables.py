"""paho's ``Properties`` with shared tables behave exactly as paho's own (ingest/_paho_tables.py)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import paho.mqtt.properties
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest._paho_tables import install_shared_property_tables
from veille import library_pins
from veille.errors import IncompatibleLibraryError
from veille.library_pins import PAHO_PIN

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
PACKET_TYPES = (
    PacketTypes.PUBLISH,
    PacketTypes.PUBACK,
    PacketTypes.CONNACK,
    PacketTypes.SUBACK,
    PacketTypes.DISCONNECT,
)


def unpatched_properties_module() -> ModuleType:
    """A second, never patched copy of paho's properties module: the reference."""
    spec = importlib.util.spec_from_file_location(
        "paho.mqtt.properties_reference", paho.mqtt.properties.__file__
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def publish_properties(owner: Any, *, content_type: str | None, user: list[tuple[str, str]]) -> Any:
    properties = owner(PacketTypes.PUBLISH)
    if content_type is not None:
        properties.ContentType = content_type
    if user:
        properties.UserProperty = user
    properties.MessageExpiryInterval = 60
    return properties


@pytest.fixture(scope="module")
def reference() -> Any:
    return unpatched_properties_module().Properties


def test_a_patched_object_holds_what_paho_would_set(reference: Any) -> None:
    install_shared_property_tables()
    for packet_type in PACKET_TYPES:
        ours, first_again, papers = (
            Properties(packet_type),
            Properties(packet_type),
            reference(packet_type),
        )
        assert vars(ours) == vars(papers) == vars(first_again)
        assert ours.names is first_again.names  # built once, shared
        assert ours.properties is first_again.properties


def test_pack_and_unpack_give_paho_s_bytes_and_values(reference: Any) -> None:
    install_shared_property_tables()
    for content_type, user in (("application/json", [("k", "v"), ("a", "b")]), (None, [])):
        ours = publish_properties(Properties, content_type=content_type, user=user)
        papers = publish_properties(reference, content_type=content_type, user=user)
        wire = ours.pack()
        assert wire == papers.pack()
        read_ours, read_papers = Properties(PacketTypes.PUBLISH), reference(PacketTypes.PUBLISH)
        assert read_ours.unpack(wire)[1] == read_papers.unpack(wire)[1] == len(wire)
        assert read_ours.json() == read_papers.json()
        assert str(read_ours) == str(read_papers)


def test_unpack_into_a_used_object_forgets_the_previous_packet_s_properties() -> None:
    install_shared_property_tables()
    carrying = publish_properties(Properties, content_type="text/plain", user=[("k", "v")])
    bare = Properties(PacketTypes.PUBLISH)
    bare.MessageExpiryInterval = 5
    carrying.unpack(bare.pack())
    assert carrying.json() == {"MessageExpiryInterval": 5}
    assert not hasattr(carrying, "ContentType") and not hasattr(carrying, "UserProperty")
    carrying.clear()
    assert carrying.isEmpty()
    assert Properties(PacketTypes.PUBLISH).isEmpty()  # the shared template was not touched


def test_clear_on_an_object_built_before_the_patch_uses_paho_s_clear() -> None:
    install_shared_property_tables()
    stray = Properties.__new__(Properties)
    object.__setattr__(stray, "packetType", -1)  # a packet type the patch never built
    for name, value in vars(Properties(PacketTypes.PUBLISH)).items():
        if name != "packetType":
            object.__setattr__(stray, name, value)
    object.__setattr__(stray, "ContentType", "text/plain")
    stray.clear()
    assert not hasattr(stray, "ContentType")


def test_installing_twice_keeps_one_layer() -> None:
    install_shared_property_tables()
    patched_init = Properties.__init__
    install_shared_property_tables()
    assert Properties.__init__ is patched_init


def test_an_unknown_paho_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(library_pins.importlib.metadata, "version", lambda _: "3.0.0")
    with pytest.raises(IncompatibleLibraryError, match="ingest/_paho_tables.py"):
        install_shared_property_tables()


def test_the_pin_matches_pyproject_and_the_installed_paho() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    assert str(PAHO_PIN) in dependencies
    assert PAHO_PIN.admits(importlib.metadata.version("paho-mqtt"))
