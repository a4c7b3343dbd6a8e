"""What TLS adds per MQTT message: one hop's PUBLISH and PUBACK over a loopback TCP pair,
once plain and once through TLS with the stack's own certificates, CPU of both ends.

Mosquitto has no plaintext listener (docs/SECURITY.md), so the pipeline cannot be run without
TLS to compare; this isolates the record layer instead, at the pipeline's packet sizes, with
one TLS record per packet each way as Mosquitto writes them. A message crosses two TLS hops
(device -> broker, broker -> gateway): its TLS cost is twice one hop's, shared between the
device (here the generator), Mosquitto and the gateway. Kafka and the local PostgreSQL are
not on TLS in the local stack (docs/SECURITY.md says what production adds).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass

from veille.security import CertificateFiles

from ._stats import median

__all__ = ["TlsCost", "measure_tls_cost"]

PUBACK = b"\x40\x02\x00\x01"
REPEATS = 3
WINDOW = 64  # PUBACKs the client may owe reading: keeps both socket buffers from filling


@dataclass(frozen=True, slots=True)
class TlsCost:
    packet_bytes: int
    messages: int
    plain_us: float  # CPU of both ends per message, one hop, median of REPEATS
    tls_us: float

    @property
    def per_hop_us(self) -> float:
        return self.tls_us - self.plain_us

    @property
    def per_message_us(self) -> float:
        """Both MQTT hops of a message."""
        return 2 * self.per_hop_us


def _pair(certs: CertificateFiles | None) -> tuple[socket.socket, socket.socket]:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    listener.close()
    for s in (client, server):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if certs is None:
        return client, server
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(certs.server_cert, certs.server_key)
    client_context = ssl.create_default_context(cafile=certs.ca_cert)
    client_context.check_hostname = False  # the certificate names the broker's host, not this
    wrapped: dict[str, ssl.SSLSocket] = {}
    handshake = threading.Thread(
        target=lambda: wrapped.update(server=server_context.wrap_socket(server, server_side=True))
    )
    handshake.start()
    tls_client = client_context.wrap_socket(client)
    handshake.join()
    return tls_client, wrapped["server"]


def _one_run(certs: CertificateFiles | None, packet: bytes, messages: int) -> float:
    """The client (one thread) publishes in windows and reads the PUBACKs; the broker's end
    (another thread) reads and answers each packet. One thread per socket: an SSL object
    must not be read and written from two threads at once."""
    client, server = _pair(certs)

    def broker() -> None:
        got = 0
        size = len(packet)
        while got < messages * size:
            data = server.recv(1 << 16)
            if not data:
                return
            before = got // size
            got += len(data)
            for _ in range(got // size - before):
                server.sendall(PUBACK)

    started = time.process_time()
    reader = threading.Thread(target=broker)
    reader.start()
    acked_bytes = 0
    for sent in range(1, messages + 1):
        client.sendall(packet)
        if sent % WINDOW == 0 or sent == messages:
            while acked_bytes < (sent - (WINDOW if sent < messages else 0)) * len(PUBACK):
                acked_bytes += len(client.recv(1 << 16))
    reader.join()
    spent = time.process_time() - started
    client.close()
    server.close()
    return spent / messages * 1e6


def measure_tls_cost(certs: CertificateFiles, packet_bytes: int, messages: int) -> TlsCost:
    packet = b"\x32" + bytes(packet_bytes - 1)  # a PUBLISH's size; the content does not matter
    plain = [_one_run(None, packet, messages) for _ in range(REPEATS)]
    tls = [_one_run(certs, packet, messages) for _ in range(REPEATS)]
    return TlsCost(packet_bytes, messages, median(plain), median(tls))
