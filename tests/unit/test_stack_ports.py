"""A dead service comes back on its previous port, so running components reconnect."""

from __future__ import annotations

import socket

from veille.stack._stack import LocalStack, ServiceStatus


def test_a_dead_service_keeps_its_free_port() -> None:
    with socket.socket() as probe:  # a port nobody listens on once the socket closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status = ServiceStatus("postgres", 123, port, "dead")
    assert LocalStack._port_for(status, {"postgres": {"port": port}}) == port


def test_a_taken_port_or_a_first_start_gets_a_new_one() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        dead = ServiceStatus("mqtt", 123, port, "dead")
        assert LocalStack._port_for(dead, {"mqtt": {"port": port}}) != port
    first = ServiceStatus("mqtt", None, None, "stopped")
    assert LocalStack._port_for(first, {}) > 0
