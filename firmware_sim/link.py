"""Shell: a loopback TCP relay between a device and its broker that can fail on demand.

The network faults of the scenarios are made real here, on the wire the agent uses:

* ``down()``: every connection is reset and new ones are refused until ``up()``;
* ``drop()``: every current connection is reset once (the link flaps);
* ``hang()``: bytes stop flowing both ways, with no FIN, until ``resume()`` (the agent's
  keepalive must notice; TLS and MQTT see a silent peer).

TLS passes through untouched (the relay sees only ciphertext), so host-name checks and
mutual TLS are exactly as with a direct connection.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from firmware_sim.broker import LOOPBACK


class LinkRelay:
    """Relays ``127.0.0.1:<port>`` to ``target``; two threads per connection."""

    def __init__(self, target_host: str, target_port: int, host: str = LOOPBACK) -> None:
        self.target = (target_host, target_port)
        self._server = socket.create_server((host, 0))
        self.host = host
        self.port = int(self._server.getsockname()[1])
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._up = threading.Event()
        self._up.set()
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="link-relay", daemon=True)
        self._thread.start()

    # -- faults ------------------------------------------------------------------------

    def down(self) -> None:
        self._up.clear()
        self._reset_all()

    def up(self) -> None:
        self._up.set()

    def drop(self) -> None:
        self._reset_all()

    def hang(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    @property
    def is_down(self) -> bool:
        return not self._up.is_set()

    def close(self) -> None:
        self._closed = True
        self._flowing.set()
        with contextlib.suppress(OSError):
            self._server.close()
        self._reset_all()

    # -- relaying -----------------------------------------------------------------------

    def _reset_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self._up.is_set():
                with contextlib.suppress(OSError):
                    client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                with contextlib.suppress(OSError):
                    client.close()
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(None)
            with self._lock:
                self._pairs.append((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                break
            if not data:
                break
            self._flowing.wait()
            try:
                sink.sendall(data)
            except OSError:
                break
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
